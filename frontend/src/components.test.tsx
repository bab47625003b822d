import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render, screen } from '@testing-library/react';
import { Field } from './pages/Field';
import { Highlight } from './pages/Products';

afterEach(cleanup);

describe('a form field', () => {
  it('ties its error to the input and marks it invalid', () => {
    render(<Field id="cvc" label="CVC" error="must be 3 or 4 digits" />);
    const input = screen.getByLabelText('CVC');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(input.getAttribute('aria-describedby')).toBe('cvc-error');
    expect(screen.getByRole('alert').textContent).toBe('must be 3 or 4 digits');
  });

  it('says nothing when there is no error', () => {
    render(<Field id="cvc" label="CVC" />);
    expect(screen.getByLabelText('CVC').getAttribute('aria-invalid')).toBeNull();
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('a search highlight', () => {
  it('marks the matched words and keeps everything else as text', () => {
    const { container } = render(<Highlight html={'Tea &amp; <b>teapot</b> &lt;script&gt;alert(1)&lt;/script&gt;'} />);
    expect(container.querySelector('mark')?.textContent).toBe('teapot');
    expect(container.querySelector('script')).toBeNull();
    expect(container.textContent).toBe('Tea & teapot <script>alert(1)</script>');
  });

  it('never turns markup in the text into elements', () => {
    const { container } = render(<Highlight html={'<b>x</b><img src=x onerror=alert(1)>'} />);
    expect(container.querySelector('img')).toBeNull();
  });
});

describe('decoding a highlight', () => {
  it('reads the escapes both engines write, and leaves unknown ones', async () => {
    const { decode } = await import('./pages/Products');
    expect(decode('a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#x27; &#x2F; &nbsp;')).toBe(`a & b <c> "d" 'e' / &nbsp;`);
  });
});

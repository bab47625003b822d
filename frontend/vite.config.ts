import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The build is committed (frontend/dist) and embedded in the pazar binary;
// `.ci/run` rebuilds it and fails when it differs, so what is served is never
// stale against src/. Local development: `npm run dev` proxies the API to a
// `pazar serve` on 127.0.0.1:8080.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
  },
});

import { useEffect, useState } from 'react';
import { api, ApiError } from '../api';

type Actor = { key: string; status: string; restarts: number; uptime_seconds: number; idle_seconds: number; mailbox_depth: number | null };
type Kind = {
  kind: string;
  status: string;
  alive: number;
  spawned_total: number;
  passivated_total: number;
  restarts_total: number;
  recent_failures: number;
  max_restarts: number;
  actors: Actor[];
  truncated: boolean;
};
type Task = { name: string; state: string; restarts: number; last_panic: string | null };
type Partition = { topic: string; partition: number; lag: number };
type Consumer = { group: string; state: string; restarts: number; last_error: string | null; handled: number; dead_letters: number; partitions: Partition[] };
type Lag = { subscriber: string; p50_ms: number; p99_ms: number };
export type Tree = {
  status: string;
  roles: string;
  uptime_seconds: number;
  supervisors: Kind[];
  tasks: Task[];
  consumers: Consumer[];
  event_lag: Lag[];
};

const every = 3_000;

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3_600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3_600).toFixed(1)} h`;
}

/** The supervision tree, drawn as a tree and read again every 3 s: the root,
 *  one entity supervisor per kind with its actors, the background loops and
 *  the Kafka consumers. Restarts and anything not running stand out. */
export function SupervisionTree() {
  const [tree, setTree] = useState<Tree | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [at, setAt] = useState<Date | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer = 0;
    const read = async () => {
      try {
        const answer = await api<Tree>('/api/v1/admin/supervisor?limit=20');
        if (stopped) return;
        setTree(answer);
        setError(null);
        setAt(new Date());
      } catch (caught) {
        if (!stopped) setError(caught instanceof ApiError ? caught.message : String(caught));
      }
      if (!stopped) timer = window.setTimeout(read, every);
    };
    void read();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, []);
  if (error && !tree) return <p className="error" role="alert">{error}</p>;
  if (!tree) return <p role="status">Reading the tree…</p>;
  const alarm = (bad: boolean) => (bad ? 'node alarm' : 'node');
  return (
    <>
      <h2>Supervision tree</h2>
      <p className="live">
        Refreshed every {every / 1000} s{at ? `, last at ${at.toLocaleTimeString()}` : ''}.
        {error ? ` The last read failed: ${error}` : ''}
      </p>
      <ul className="tree" aria-label="Supervision tree">
        <li>
          <span className={alarm(tree.status !== 'running')}>
            <strong>root</strong> — {tree.status}, roles {tree.roles}, up {duration(tree.uptime_seconds)}
          </span>
          <ul>
            <li>
              <span className="node">
                <strong>entity supervisors</strong>
              </span>
              <ul>
                {tree.supervisors.map((kind) => (
                  <li key={kind.kind} data-kind={kind.kind}>
                    <details open={kind.alive > 0 && kind.alive <= 20}>
                      <summary className={alarm(kind.status !== 'running' || kind.recent_failures > 0)}>
                        <strong>{kind.kind}</strong> — {kind.alive} alive · {kind.spawned_total} activations · {kind.passivated_total} passivated ·{' '}
                        <span className={kind.restarts_total > 0 ? 'count-bad' : undefined}>{kind.restarts_total} restarts</span>
                        {kind.status !== 'running' && ` · ${kind.status}`}
                      </summary>
                      <ul>
                        {kind.actors.map((actor) => (
                          <li key={actor.key}>
                            <span className={alarm(actor.status !== 'running' || actor.restarts > 0)}>
                              <code>{actor.key}</code> — {actor.status}, up {duration(actor.uptime_seconds)}, idle {duration(actor.idle_seconds)}
                              {actor.restarts > 0 && `, ${actor.restarts} restarts`}
                              {actor.mailbox_depth ? `, ${actor.mailbox_depth} waiting` : ''}
                            </span>
                          </li>
                        ))}
                        {kind.truncated && <li>… and more</li>}
                      </ul>
                    </details>
                  </li>
                ))}
              </ul>
            </li>
            <li>
              <span className="node">
                <strong>background loops</strong>
              </span>
              <ul>
                {tree.tasks.map((task) => (
                  <li key={task.name}>
                    <span className={alarm(task.state !== 'running' || task.restarts > 0)}>
                      <code>{task.name}</code> — {task.state}
                      {task.restarts > 0 && `, ${task.restarts} restarts`}
                      {task.last_panic && ` (last panic: ${task.last_panic})`}
                    </span>
                  </li>
                ))}
              </ul>
            </li>
            {tree.consumers.length > 0 && (
              <li>
                <span className="node">
                  <strong>Kafka consumers</strong>
                </span>
                <ul>
                  {tree.consumers.map((consumer) => (
                    <li key={consumer.group}>
                      <span className={alarm(consumer.state !== 'running' || consumer.restarts > 0 || consumer.dead_letters > 0)}>
                        <code>{consumer.group}</code> — {consumer.state}, lag {consumer.partitions.reduce((sum, p) => sum + p.lag, 0)}, {consumer.handled} handled,{' '}
                        {consumer.dead_letters} dead letters
                        {consumer.restarts > 0 && `, ${consumer.restarts} restarts`}
                        {consumer.last_error && ` (${consumer.last_error})`}
                      </span>
                    </li>
                  ))}
                </ul>
              </li>
            )}
          </ul>
        </li>
      </ul>
      {tree.event_lag.length > 0 && (
        <>
          <h3>Event delivery lag</h3>
          <table className="lines">
            <thead>
              <tr>
                <th scope="col">Subscriber</th>
                <th scope="col">p50</th>
                <th scope="col">p99</th>
              </tr>
            </thead>
            <tbody>
              {tree.event_lag.map((lag) => (
                <tr key={lag.subscriber}>
                  <th scope="row">{lag.subscriber}</th>
                  <td>{lag.p50_ms.toFixed(1)} ms</td>
                  <td>{lag.p99_ms.toFixed(1)} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}

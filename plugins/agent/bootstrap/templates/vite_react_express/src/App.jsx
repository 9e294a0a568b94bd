import { useEffect, useState } from 'react';

const PROJECT_DESCRIPTION = "{{project_description}}";

export default function App() {
  const [health, setHealth] = useState(null);

  useEffect(() => {
    fetch('/api/health')
      .then((response) => response.json())
      .then((data) => setHealth(Boolean(data.ok)))
      .catch(() => setHealth(false));
  }, []);

  return (
    <main className="app">
      <h1>{{project_name}}</h1>
      <p className="description">{PROJECT_DESCRIPTION}</p>
      <p>
        Server:{' '}
        <span style={{ color: health ? '#1b7f3b' : '#b42318' }}>
          {health === null ? 'checking...' : health ? 'running' : 'unreachable'}
        </span>
      </p>
    </main>
  );
}

// The page's script: asks the API whether the server is up.
'use strict';

async function checkHealth() {
  const status = document.getElementById('status');
  try {
    const response = await fetch('/api/health');
    const data = await response.json();
    status.textContent = data.ok ? 'running' : 'not ready';
    status.className = data.ok ? 'ok' : 'error';
  } catch (error) {
    status.textContent = 'unreachable';
    status.className = 'error';
  }
}

checkHealth();

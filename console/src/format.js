// Display helpers shared by the pages. Times are shown in the browser's time zone; the API speaks UTC.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function formatDateTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

export function formatTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : timeOnly.format(date);
}

export function formatInt(n) {
  return typeof n === 'number' ? integer.format(n) : '';
}

// Costs come as exact millionths of a dollar; shown with enough digits that small runs are not "$0.00".
export function formatCost(microUsd) {
  if (typeof microUsd !== 'number') return '';
  const usd = microUsd / 1e6;
  const digits = usd !== 0 && Math.abs(usd) < 0.01 ? 6 : 2;
  return `$${usd.toFixed(digits)}`;
}

export function formatBytes(n) {
  if (typeof n !== 'number') return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// An agent plugin id without its "agent." prefix, for compact lines.
export function agentName(id) {
  return typeof id === 'string' ? id.replace(/^agent\./, '') : '';
}

// YYYY-MM-DD of a Date in UTC (the usage API counts whole UTC days).
export function utcDay(date) {
  return date.toISOString().slice(0, 10);
}

const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });
export function formatNumber(n) {
  return typeof n === 'number' ? decimal.format(n) : '';
}

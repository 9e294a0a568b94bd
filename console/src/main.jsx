// Entry point: the stylesheet (bundled into assets/console-<hash>.css) and the app, mounted into the
// #app element of index.html. Nothing runs inline in the page, as the Content-Security-Policy demands.
import { render } from 'preact';
import { App } from './app.jsx';
import './styles.css';

const root = document.getElementById('app');
root.textContent = '';
render(<App />, root);

// Vite builds the client into dist/, which the Express server serves. `npm run dev` serves the client
// with hot reload instead and sends /api to the Express server (`npm run server`).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': `http://127.0.0.1:${process.env.PORT || 3000}`,
    },
  },
});

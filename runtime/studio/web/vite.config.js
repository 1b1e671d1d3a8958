// Built by runtime/studio/build.rs into Cargo's OUT_DIR (STUDIO_OUT_DIR); the files are embedded into the
// supactl binary. No source maps (they would ship the sources) and content-hashed names (cached forever).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: process.env.STUDIO_OUT_DIR || 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    modulePreload: { polyfill: false },
  },
});

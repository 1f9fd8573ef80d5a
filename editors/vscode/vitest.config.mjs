import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'url';

export default defineConfig({
  resolve: { alias: { vscode: fileURLToPath(new URL('./test/vscode-mock.cjs', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['./test/setup.cjs'],
    environment: 'node',
  },
});

// ESLint (flat config): typescript-eslint's recommended rules and the import boundaries of the
// layers: api → kms → store / the hsm façade (src/hsm/index.ts) → the binding (the only pkcs11js
// import), with no import cycles anywhere.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/** Everything under src/hsm but its façade. */
const hsmInternals = {
  regex: '(^|/)hsm/(?!index$)',
  message: 'Outside src/hsm, use the façade (src/hsm/index.ts) only.',
};
const noPkcs11 = { name: 'pkcs11js', message: 'Only the binding (src/hsm/binding*.ts) imports pkcs11js.' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The binding's edge and tests of untyped JSON bodies need it now and then; never in new domain code.
      '@typescript-eslint/no-explicit-any': 'warn',
      // Comma-sequenced statements are this code base's idiom in a few places.
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/hsm/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [noPkcs11], patterns: [hsmInternals] }],
    },
  },
  {
    // The HTTP edge knows nothing of the token: kms/ hands it KmsErrors.
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [noPkcs11], patterns: [{ regex: '(^|/)hsm(/|$)', message: 'src/api talks to kms/, never to the token.' }] }],
    },
  },
  {
    // The token layer doesn't depend on the layers above it.
    files: ['src/hsm/**/*.ts'],
    ignores: ['src/hsm/binding*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [noPkcs11], patterns: [{ regex: '^\\.\\./(api|kms|store)(/|$)', message: 'src/hsm sits below api, kms and store.' }] },
      ],
    },
  },
);

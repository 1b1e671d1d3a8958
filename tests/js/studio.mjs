// The dashboard in a real browser: Debian's chromium driven by playwright-core (it cannot download its own
// browser here). Usage: node studio.mjs ADMIN_URL ADMIN_KEY SCREENSHOT_DIR. Prints what the Python test
// checks as JSON; every step waits for what a user would see, by accessible names.
import { chromium } from 'playwright-core';

const [adminUrl, adminKey, shots] = process.argv.slice(2);
const out = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const button = (name) => page.getByRole('button', { name, exact: true });

try {
  await page.goto(adminUrl + '/');
  // A wrong key is refused with a message; the right one signs in.
  await page.getByLabel('Admin key').fill('not-the-key');
  await button('Sign in').click();
  out.wrong_key = await page.getByRole('alert').innerText();
  await shot('sign-in');
  await page.getByLabel('Admin key').fill(adminKey);
  await button('Sign in').click();
  await button('New project').click();
  await page.getByLabel('Project name').fill('studio e2e');
  await button('Create project').click();
  await page.getByRole('navigation', { name: 'Project' }).waitFor({ timeout: 60000 });
  out.ref = page.url().split('#/p/')[1].split('/')[0];

  // Tables: a table with two columns, one row inserted through the row form, seen in the grid.
  await button('New table').click();
  await page.getByLabel('Table name').fill('notes');
  await page.getByLabel('Column name').nth(1).fill('body');
  await page.getByLabel('Column type').nth(1).fill('text');
  await button('Save').click();
  await button('Insert row').click();
  await page.getByLabel('body', { exact: true }).fill('hello from studio');
  await button('Save').click();
  const rows = page.getByRole('table', { name: 'Rows' });
  await rows.getByText('hello from studio').waitFor();
  out.grid = await rows.innerText();
  await shot('tables');

  // SQL: a result with a NULL, then an error with its position marked.
  await page.getByRole('link', { name: 'SQL', exact: true }).click();
  await page.getByLabel('SQL', { exact: true }).fill('select body, null::text as nothing from notes');
  await button('Run').click();
  const results = page.getByRole('table', { name: 'Query results' });
  await results.waitFor();
  out.sql = await results.innerText();
  await shot('sql');
  await page.getByLabel('SQL', { exact: true }).fill('select\n  nope from notes');
  await button('Run').click();
  out.sql_error = await page.getByRole('alert').innerText();
  out.sql_marked = await page.locator('mark').innerText();

  // Auth: the sign-up settings, saved and read back by the auth service (see the Python side).
  await page.getByRole('link', { name: 'Auth', exact: true }).click();
  await page.getByLabel('Minimum password length').fill('12');
  await button('Save settings').click();
  await page.getByText('Saved').waitFor();
  await shot('auth');

  // Functions: deploy the sample and invoke it.
  await page.getByRole('link', { name: 'Functions', exact: true }).click();
  await button('New function').click();
  await page.getByLabel('Function name').fill('hello');
  await button('Deploy').click();
  await button('hello').click();
  await button('Invoke').click();
  const response = page.getByLabel('Response');
  await response.waitFor({ timeout: 60000 });
  out.invoke = await response.innerText();
  // A new version starts from the deployed code, loaded back into the editor.
  await page.getByText('Deploy a new version').click();
  await page.getByLabel('Code', { exact: true }).waitFor();
  out.loaded_code = await page.getByLabel('Code', { exact: true }).inputValue();
  await shot('functions');

  // API keys: create a secret key, reveal it explicitly, revoke it.
  await page.getByRole('link', { name: 'API keys', exact: true }).click();
  const keys = page.getByRole('table', { name: 'API keys' });
  await keys.waitFor();
  out.page_before_reveal = await page.content();
  await page.getByLabel('Key name').fill('ci-key');
  await page.getByLabel('Key type').selectOption('secret');
  await button('Create key').click();
  await page.getByRole('status').waitFor();
  await page.reload();
  await keys.waitFor();
  const row = keys.getByRole('row').filter({ hasText: 'ci-key' });
  await row.getByRole('button', { name: 'Reveal' }).click();
  out.revealed = await row.locator('.key').innerText();
  await row.getByRole('button', { name: 'Revoke ci-key' }).click();
  await keys.getByRole('row').filter({ hasText: 'ci-key' }).waitFor({ state: 'detached' });
  await shot('api-keys');

  // Without the CSRF token the session's cookie alone is refused; signed out, nothing is reachable.
  out.csrf_status = await page.evaluate(async () => (await fetch('/admin/v1/projects', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"csrf"}',
  })).status);
  await button('Sign out').click();
  await page.getByLabel('Admin key').waitFor();
  out.after_sign_out = await page.evaluate(async () => (await fetch('/admin/v1/projects')).status);
  out.page_errors = errors;
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

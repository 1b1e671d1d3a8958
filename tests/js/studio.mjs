// The dashboard in a real browser: Debian's chromium driven by playwright-core (it cannot download its own
// browser here). Usage: node studio.mjs ADMIN_URL ADMIN_KEY SCREENSHOT_DIR SMS_HOOK_URL SMS_HOOK_SECRET. Prints what the Python test
// checks as JSON; every step waits for what a user would see, by accessible names.
import { chromium } from 'playwright-core';

const [adminUrl, adminKey, shots, smsUri, smsSecret] = process.argv.slice(2);
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

  // SQL first: an enum type, which the table editor then offers among the database's column types.
  await page.getByRole('link', { name: 'SQL', exact: true }).click();
  await page.getByLabel('SQL', { exact: true }).fill("create type mood as enum ('happy', 'sad')");
  await button('Run').click();
  await page.getByText('done, 0 rows affected').waitFor();
  await page.getByRole('link', { name: 'Tables', exact: true }).click();

  // Tables: a table with its columns' types chosen from the database's list, one row inserted through
  // the row form, seen in the grid.
  await button('New table').click();
  await page.getByLabel('Table name').fill('notes');
  const types = page.getByLabel('Column type');
  await types.nth(1).locator('option').filter({ hasText: /^mood$/ }).waitFor({ state: 'attached' });
  out.type_options = await types.nth(1).locator('option').allInnerTexts();
  await page.getByLabel('Column name').nth(1).fill('body');
  await types.nth(1).selectOption('text');
  await button('Add column').click();
  await page.getByLabel('Column name').nth(2).fill('owner');
  await types.nth(2).selectOption('uuid');
  await button('Add column').click();
  await page.getByLabel('Column name').nth(3).fill('feeling');
  await types.nth(3).selectOption('mood');
  await button('Save').click();
  await button('Insert row').click();
  await page.getByLabel('body', { exact: true }).fill('hello from studio');
  await page.getByLabel('feeling', { exact: true }).fill('happy');
  await button('Save').click();
  const rows = page.getByRole('table', { name: 'Rows' });
  await rows.getByText('hello from studio').waitFor();
  out.grid = await rows.innerText();

  // RLS on, and a policy written from the page: its SQL shown before it runs, then listed.
  await page.getByLabel('Row level security').check();
  await page.getByText('RLS is on and no policy exists').waitFor();
  await button('New policy').click();
  await page.getByLabel('Policy name').fill('own "notes"');
  await page.getByLabel('Command').selectOption('SELECT');
  await page.getByLabel('authenticated', { exact: true }).check();
  await page.getByLabel('USING expression').fill('owner = auth.uid()');
  out.policy_sql = await page.getByLabel('Policy SQL').innerText();
  await button('Create policy').click();
  await page.getByRole('list', { name: 'Policies' }).getByText('own "notes"').waitFor();
  // A second policy, dropped again after its statement is shown.
  await button('New policy').click();
  await page.getByLabel('Policy name').fill('doomed');
  await page.getByLabel('USING expression').fill('true');
  await button('Create policy').click();
  await button('Drop policy doomed').click();
  out.drop_sql = await page.getByLabel('Drop SQL').innerText();
  await button('Confirm drop policy doomed').click();
  await page.getByRole('list', { name: 'Policies' }).getByText('doomed', { exact: true }).waitFor({ state: 'detached' });
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

  // Auth: the sign-up settings, saved and read back by the auth service (see the Python side); a user
  // created (signed in with supabase-py on the Python side) and sent a recovery email; another deleted.
  await page.getByRole('link', { name: 'Auth', exact: true }).click();
  await page.getByLabel('Minimum password length').fill('12');
  await page.getByLabel('Allow phone sign-ins').check();
  await page.getByLabel('Seconds between two SMS to one user').fill('0');
  await page.getByLabel('Redirect URLs').fill('http://localhost:3000/welcome\n\nhttps://app.example.com/**');
  await button('Save settings').click();
  await page.getByText('Saved').waitFor();

  // Sign-in providers: a preset with its secret, a generic OIDC provider by issuer, then that one edited
  // (disabled, secret field left empty: the stored one is kept).
  const providers = page.getByRole('table', { name: 'Providers' });
  await page.getByLabel('Provider', { exact: true }).selectOption('github');
  await page.getByLabel('Client ID').fill('gh-client');
  await page.getByLabel('Client secret').fill('gh-secret-from-studio');
  await button('Save provider').click();
  await providers.getByText('gh-client').waitFor();
  await page.getByLabel('Provider', { exact: true }).selectOption('oidc');
  await page.getByLabel('Provider name').fill('corp');
  await page.getByLabel('Client ID').fill('corp-client');
  await page.getByLabel('Client secret').fill('corp-secret-from-studio');
  await page.getByLabel('Issuer URL').fill('http://127.0.0.1:9/corp');
  await button('Save provider').click();
  await providers.getByText('corp-client').waitFor();
  await button('Edit corp').click();
  await page.getByLabel('Provider name').waitFor();
  out.edit_kind = await page.getByLabel('Provider', { exact: true }).inputValue();
  await page.getByRole('form', { name: 'Provider settings' }).getByLabel('Enabled').uncheck();
  await button('Save provider').click();
  await providers.getByRole('row').filter({ hasText: 'corp' }).getByText('disabled').waitFor();
  out.providers = await providers.innerText();

  // The Send SMS hook: the receiver's endpoint and secret (the Python side sends a code through it).
  const hook = page.getByRole('form', { name: 'Send SMS hook' });
  await hook.getByText('Not set').waitFor();
  await page.getByLabel('Endpoint URL').fill(smsUri);
  await button('Generate secret').click();
  out.generated_secret = await page.getByLabel('Secret', { exact: true }).inputValue();
  await page.getByLabel('Secret', { exact: true }).fill(smsSecret);
  await button('Save hook').click();
  await hook.getByText('Set: enabled, secret stored').waitFor();
  await page.reload();
  await hook.getByText('Set: enabled, secret stored').waitFor();
  out.hook_uri = await page.getByLabel('Endpoint URL').inputValue();
  out.redirect_urls = await page.getByLabel('Redirect URLs').inputValue();
  await providers.getByText('corp-client').waitFor();
  out.auth_page = await page.content();
  const users = page.getByRole('table', { name: 'Users' });
  for (const email of ['studio-user@example.com', 'throwaway@example.com']) {
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill('studio-password-42');
    await button('Create user').click();
    await users.getByText(email).waitFor();
  }
  await button('Delete throwaway@example.com').click();
  await button('Confirm delete throwaway@example.com').click();
  await users.getByText('throwaway@example.com').waitFor({ state: 'detached' });
  await button('Send recovery to studio-user@example.com').click();
  await page.getByText('Recovery email sent').waitFor();
  out.users = await users.innerText();
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

  // Platform: the workers, and the placement strategy chosen from those the API offers.
  await page.getByRole('link', { name: 'Platform', exact: true }).click();
  await button('Drain local').waitFor();
  await page.getByLabel('Placement strategy').selectOption('round-robin');
  await button('Save strategy').click();
  await button('Save strategy').and(page.locator(':disabled')).waitFor();
  await shot('platform');

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

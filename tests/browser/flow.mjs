// Drives Lockbox web enrollment and the officer console in headless Debian
// Chromium through playwright-core. Run by crates/cli/tests/browser.rs, which
// prepares the CA, starts `lockbox serve` (HTTPS, certificate issued by the CA)
// and checks the files this script leaves in OUT (PKCS#12 files, the recovery
// blob, screenshots) with openssl and the lockbox CLI.
//
// Environment: BASE (https://127.0.0.1:PORT), OUT (directory), USER/USER_PASS,
// OFFICER/OFFICER_PASS, AUDITOR/AUDITOR_PASS, ARCHIVE_TEMPLATE,
// APPROVAL_TEMPLATE, PFX_PASS. Prints one JSON line with what it saw.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("BASE");
const OUT = env("OUT");
const result = { screenshots: [] };
const profiles = [];
const contexts = [];

async function open(user, pass) {
  const dir = mkdtempSync(join(tmpdir(), "lockbox-chromium-"));
  profiles.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
    httpCredentials: { username: user, password: pass },
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  contexts.push(context);
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(60000);
  return { context, page };
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// A full-page screenshot and one of the element that matters, both recorded.
async function shoot(page, name, selector) {
  const el = page.locator(selector).first();
  await el.waitFor({ state: "visible" });
  const full = join(OUT, `${name}.png`);
  const part = join(OUT, `${name}-element.png`);
  await page.screenshot({ path: full, fullPage: true });
  await el.screenshot({ path: part });
  result.screenshots.push({ name, full, element: part, selector, text: (await el.innerText()).slice(0, 300) });
}

// Waits for the enrollment page to finish: `want` appears, or the page reports an error.
async function settle(page, want) {
  await page.locator(`${want}, #result.error`).first().waitFor({ timeout: 120000 });
  if (await page.locator("#result.error").count()) {
    throw new Error(`enrollment failed: ${await page.locator("#result").innerText()}`);
  }
}

async function download(page, selector, path) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.locator(selector).first().click()]);
  await dl.saveAs(path);
  return dl.suggestedFilename();
}

try {
  // 1. The user enrolls in the browser for an archiving template: issued at once.
  const user = await open(env("USER"), env("USER_PASS"));
  let p = user.page;
  await p.goto(`${BASE}/certsrv/`);
  await p.getByRole("link", { name: "Request a certificate" }).click();
  await p.locator("#enroll").waitFor();
  result.secure_context = await p.evaluate(() => window.isSecureContext && !!window.crypto.subtle);
  await p.selectOption("#template", env("ARCHIVE_TEMPLATE"));
  await p.fill("#cn", "Web Alice");
  await p.fill("#password", env("PFX_PASS"));
  await p.click("#btnEnroll");
  await settle(p, "#download-pfx");
  result.issued_text = await p.locator("#result").innerText();
  await shoot(p, "01-browser-enrollment-issued", "#download-pfx");
  result.issued_filename = await download(p, "#download-pfx", join(OUT, "browser-issued.p12"));
  const issuedId = Number((result.issued_text.match(/request (\d+)/) || [])[1]);
  check(issuedId > 0, `request id in "${result.issued_text}"`);
  result.issued_id = issuedId;

  // 2. The same user asks for a template that needs approval: it pends.
  await p.goto(`${BASE}/certsrv/certrqma.asp`);
  await p.selectOption("#template", env("APPROVAL_TEMPLATE"));
  await p.fill("#cn", "Web Alice");
  await p.fill("#password", env("PFX_PASS"));
  await p.click("#btnEnroll");
  await settle(p, "#status-link");
  result.pending_text = await p.locator("#result").innerText();
  const pendingId = Number((result.pending_text.match(/Your Request Id is (\d+)/) || [])[1]);
  check(pendingId > 0, `pending id in "${result.pending_text}"`);
  result.pending_id = pendingId;
  await shoot(p, "02-browser-enrollment-pending", "#result");

  // Before approval the status page says it is not issued yet.
  await p.goto(`${BASE}/certsrv/certckpn.asp`);
  let row = p.locator(`.pending-entry[data-request-id="${pendingId}"]`);
  await row.locator("input[type=password]").fill(env("PFX_PASS"));
  await row.getByRole("button", { name: "Check and install" }).click();
  await row.locator(".status").filter({ hasText: /\S/ }).waitFor();
  result.before_approval = await row.locator(".status").innerText();
  check(result.before_approval.includes("Not issued yet"), `status before approval: ${result.before_approval}`);

  // 3. The officer sees it pending (with the Archived Key column) and issues it.
  const officer = await open(env("OFFICER"), env("OFFICER_PASS"));
  let o = officer.page;
  await o.goto(`${BASE}/console/`);
  await o.click("#nav-pending");
  const prow = o.locator(`#requests tr[data-request-id="${pendingId}"]`);
  await prow.waitFor();
  result.console_headers = await o.locator("#requests thead th").allInnerTexts();
  result.pending_row = await prow.innerText();
  await shoot(o, "03-console-pending", `#requests tr[data-request-id="${pendingId}"]`);
  await prow.getByRole("button", { name: "Issue" }).click();
  await o.locator("#done").waitFor();
  result.issue_done = await o.locator("#done").innerText();
  await o.click("#nav-issued");
  const irow = o.locator(`#requests tr[data-request-id="${pendingId}"]`);
  await irow.waitFor();
  result.issued_row_archived = await irow.locator("td.archived").innerText();
  await shoot(o, "04-console-issued", "#requests");
  // Add/Remove Columns: the officer picks the columns of the issued view.
  await o.locator("#columns summary").click();
  for (const c of ["RequestID", "RequesterName", "CertificateHash", "ArchivedKey"]) {
    await o.locator(`#columns input[name="c_${c}"]`).check();
  }
  await o.click("#apply-columns");
  await o.locator("#requests").waitFor();
  result.chosen_headers = await o.locator("#requests thead th").allInnerTexts();
  result.chosen_row = await o.locator(`#requests tr[data-request-id="${pendingId}"]`).innerText();

  // A forged post (no or a wrong anti-forgery token) is refused.
  const forged = await o.request.post(`${BASE}/console/requests/${pendingId}/deny`, { form: { csrf: "00".repeat(32) } });
  result.forged_status = forged.status();
  const noToken = await o.request.post(`${BASE}/console/revoke`, { form: { serial: "01", reason: "keyCompromise" } });
  result.no_token_status = noToken.status();

  // 4. The user collects the approved certificate from the status page.
  await p.goto(`${BASE}/certsrv/certckpn.asp`);
  row = p.locator(`.pending-entry[data-request-id="${pendingId}"]`);
  // The key was sealed under the password chosen at request time.
  await row.locator("input[type=password]").fill("not the password");
  await row.getByRole("button", { name: "Check and install" }).click();
  await row.locator(".status").filter({ hasText: "wrong password" }).waitFor();
  result.wrong_password = await row.locator(".status").innerText();
  await row.locator("input[type=password]").fill(env("PFX_PASS"));
  await row.getByRole("button", { name: "Check and install" }).click();
  await row.locator("#download-pfx").waitFor({ timeout: 120000 });
  await shoot(p, "05-status-page-collected", `.pending-entry[data-request-id="${pendingId}"]`);
  await download(p, `.pending-entry[data-request-id="${pendingId}"] #download-pfx`, join(OUT, "browser-approved.p12"));
  // Once both files are taken, the browser holds no key of this user any more.
  await p.goto(`${BASE}/certsrv/certckpn.asp`);
  result.keys_left = await p.locator("#browser-pending").innerText();

  // 5. The officer finds the user's archived keys and downloads a recovery blob.
  await o.click("#nav-recovery");
  await o.fill("#q", env("USER"));
  await o.click("#search");
  const crow = o.locator(`#candidates tr[data-request-id="${issuedId}"]`);
  await crow.waitFor();
  result.candidates = await o.locator("#candidates tbody tr").count();
  await shoot(o, "06-console-recovery", "#candidates");
  result.blob_filename = await download(o, `#candidates tr[data-request-id="${issuedId}"] button`, join(OUT, "recovery.rec"));

  // The officer revokes the first certificate with a reason.
  await o.click("#nav-issued");
  const rrow = o.locator(`#requests tr[data-request-id="${issuedId}"]`);
  await rrow.locator("select[name=reason]").selectOption("keyCompromise");
  await rrow.getByRole("button", { name: "Revoke" }).click();
  await o.locator("#done").waitFor();
  result.revoked_row = await o.locator(`#requests tr[data-request-id="${issuedId}"]`).innerText();
  await o.click("#nav-kra");
  result.kra_status = await o.locator("#kras td.status").allInnerTexts();
  await shoot(o, "07-console-kra", "#kras");
  await o.goto(`${BASE}/console/audit`);
  result.officer_audit_status = await o.locator("#error").innerText().catch(() => "");

  // 6. The auditor reads and verifies the audit trail, and cannot recover keys.
  const auditor = await open(env("AUDITOR"), env("AUDITOR_PASS"));
  const a = auditor.page;
  await a.goto(`${BASE}/console/`);
  result.auditor_nav = await a.locator("header nav a").allInnerTexts();
  await a.click("#nav-audit");
  await a.click("#verify");
  result.audit_verify = await a.locator("#verify-result").innerText();
  await shoot(a, "08-console-audit-verified", "#verify-result");
  const denied = await a.goto(`${BASE}/console/recovery?q=${encodeURIComponent(env("USER"))}`);
  result.auditor_recovery_status = denied.status();

  // 7. Text that looks like markup is shown as text (auto-escaping).
  await o.goto(`${BASE}/console/recovery?q=${encodeURIComponent("<b id=injected>x</b>")}`);
  result.injected_elements = await o.locator("#injected").count();

  // 8. A CA administrator restricts the officer to one template; the officer
  //    then finds only the keys of that template.
  const admin = await open(env("ADMIN"), env("ADMIN_PASS"));
  const ad = admin.page;
  await ad.goto(`${BASE}/console/`);
  await ad.click("#nav-restrictions");
  await ad.selectOption("#manager", env("OFFICER"));
  await ad.fill("#templates", env("APPROVAL_TEMPLATE"));
  await ad.getByRole("button", { name: "Apply" }).click();
  await ad.locator("#restrictions tbody tr").filter({ hasText: env("APPROVAL_TEMPLATE") }).waitFor();
  result.restrictions_row = await ad.locator("#restrictions tbody tr").filter({ hasText: env("OFFICER") }).innerText();
  await o.goto(`${BASE}/console/recovery?q=${encodeURIComponent(env("USER"))}`);
  await o.locator("#candidates").waitFor();
  result.restricted_candidates = await o.locator("#candidates tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.requestId)));

  // The administrator stops the CA issuing the approval template; the
  // enrollment page no longer offers it.
  await ad.click("#nav-templates");
  const trow = ad.locator("#templates tbody tr").filter({ hasText: env("APPROVAL_TEMPLATE") });
  await trow.getByRole("button", { name: "Stop issuing" }).click();
  await ad.locator("#templates").waitFor();
  result.template_row_after = await ad.locator("#templates tbody tr").filter({ hasText: env("APPROVAL_TEMPLATE") }).innerText();
  await p.goto(`${BASE}/certsrv/certrqma.asp`);
  result.offered_templates = await p.locator("#template option").evaluateAll((os) => os.map((x) => x.value));

  console.log(JSON.stringify(result));
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
  result.pages_at_error = [];
  for (const c of contexts) {
    for (const pg of c.pages()) {
      result.pages_at_error.push({ url: pg.url(), text: (await pg.locator("body").innerText().catch(() => "")).slice(0, 600) });
    }
  }
  console.log(JSON.stringify(result));
  process.exitCode = 1;
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const d of profiles) rmSync(d, { recursive: true, force: true });
}

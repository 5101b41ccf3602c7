// Lockbox browser enrollment with key archival (served at /certsrv/lockbox-enroll.js).
//
// Everything secret happens here, in the browser: WebCrypto generates the RSA
// key; the key is encrypted (CMS EnvelopedData, RSA-OAEP-SHA-256 + AES-256-CBC)
// to the CA exchange certificate, which is checked first (signed by the CA,
// current, CA-exchange EKU); the PKCS#10 and the CMC Full PKI Request
// (MS-WCCE archival: the envelope in unsigned attribute 1.3.6.1.4.1.311.21.13,
// its SHA-256 in a signed 1.3.6.1.4.1.311.10.10.1 control) are signed with the
// new key and posted to certfnsh.asp like any certsrv client. The issued
// certificate and the key are offered as a PKCS#12 (PBES2 / PBKDF2-SHA-256 /
// AES-256-CBC key bag, HMAC-SHA-256 MAC). A pending request's key waits in
// IndexedDB, encrypted under a non-extractable AES-GCM key, until the
// certificate is collected from the status page.
"use strict";

(function () {
  const subtle = window.crypto && window.crypto.subtle;

  // ---------- DER ----------
  function concat(...parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  function tlv(tag, body) {
    const len = body.length;
    let hdr;
    if (len < 0x80) hdr = [tag, len];
    else {
      const b = [];
      for (let l = len; l > 0; l = Math.floor(l / 256)) b.unshift(l & 0xff);
      hdr = [tag, 0x80 | b.length, ...b];
    }
    return concat(new Uint8Array(hdr), body);
  }
  const seq = (...xs) => tlv(0x30, concat(...xs));
  function setOf(...xs) {
    // DER: SET OF elements sorted by their encodings
    const s = xs.slice().sort((a, b) => {
      for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
      return a.length - b.length;
    });
    return tlv(0x31, concat(...s));
  }
  const ctx = (n, body, constructed = true) => tlv((constructed ? 0xa0 : 0x80) | n, body);
  const octets = (b) => tlv(0x04, b);
  const nul = () => new Uint8Array([0x05, 0x00]);
  const utf8 = (s) => tlv(0x0c, new TextEncoder().encode(s));
  function bmp(s) {
    const out = new Uint8Array(s.length * 2);
    for (let i = 0; i < s.length; i++) { out[2 * i] = s.charCodeAt(i) >> 8; out[2 * i + 1] = s.charCodeAt(i) & 0xff; }
    return out;
  }
  function int(n) {
    const b = [];
    do { b.unshift(n & 0xff); n = Math.floor(n / 256); } while (n > 0);
    if (b[0] & 0x80) b.unshift(0);
    return tlv(0x02, new Uint8Array(b));
  }
  function oid(s) {
    const p = s.split(".").map(Number);
    const out = [40 * p[0] + p[1]];
    for (const v of p.slice(2)) {
      const b = [v & 0x7f];
      for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) b.unshift(0x80 | (x & 0x7f));
      out.push(...b);
    }
    return tlv(0x06, new Uint8Array(out));
  }
  const bitString = (b) => tlv(0x03, concat(new Uint8Array([0]), b));
  const alg = (o, params) => (params === undefined ? seq(oid(o)) : seq(oid(o), params));

  // A minimal reader: enough to take a certificate apart.
  function read(buf, off) {
    if (off + 2 > buf.length) throw new Error("truncated DER");
    const tag = buf[off];
    let len = buf[off + 1];
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || off + 2 + n > buf.length) throw new Error("bad DER length");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
      hdr += n;
    }
    const start = off + hdr, end = start + len;
    if (end > buf.length) throw new Error("truncated DER");
    return { tag, start, end, hdrStart: off, all: buf.subarray(off, end), body: buf.subarray(start, end) };
  }
  function children(node, buf) {
    const out = [];
    for (let o = node.start; o < node.end;) { const c = read(buf, o); out.push(c); o = c.end; }
    return out;
  }
  function oidText(body) {
    const p = [Math.floor(body[0] / 40), body[0] % 40];
    let v = 0;
    for (let i = 1; i < body.length; i++) { v = v * 128 + (body[i] & 0x7f); if (!(body[i] & 0x80)) { p.push(v); v = 0; } }
    return p.join(".");
  }
  function derTime(n) {
    const s = new TextDecoder().decode(n.body);
    let y, rest;
    if (n.tag === 0x17) { y = Number(s.slice(0, 2)); y += y < 50 ? 2000 : 1900; rest = s.slice(2); }
    else { y = Number(s.slice(0, 4)); rest = s.slice(4); }
    return Date.UTC(y, Number(rest.slice(0, 2)) - 1, Number(rest.slice(2, 4)), Number(rest.slice(4, 6)), Number(rest.slice(6, 8)), Number(rest.slice(8, 10)));
  }
  function parseCertificate(der) {
    const cert = read(der, 0);
    const [tbs, sigAlg, sig] = children(cert, der);
    const t = children(tbs, der);
    let i = 0;
    if (t[0].tag === 0xa0) i = 1;
    const serial = t[i], issuer = t[i + 2], validity = children(t[i + 3], der), subject = t[i + 4], spki = t[i + 5];
    const ekus = [];
    for (const x of t.slice(i + 6)) {
      if (x.tag !== 0xa3) continue;
      for (const ext of children(children(x, der)[0], der)) {
        const parts = children(ext, der);
        if (oidText(parts[0].body) === "2.5.29.37") {
          const val = parts[parts.length - 1];
          for (const k of children(read(der, val.start), der)) ekus.push(oidText(k.body));
        }
      }
    }
    const spkiParts = children(spki, der);
    return {
      tbs: tbs.all, sigAlg: oidText(children(sigAlg, der)[0].body), signature: sig.body.subarray(1),
      serial: serial.all, issuer: issuer.all, subject: subject.all, spki: spki.all,
      spkiAlg: oidText(children(spkiParts[0], der)[0].body),
      publicKeyBits: spkiParts[1].body.subarray(1),
      notBefore: derTime(validity[0]), notAfter: derTime(validity[1]), ekus,
    };
  }

  // ---------- helpers ----------
  const b64 = (u8) => { let s = ""; for (const x of u8) s += String.fromCharCode(x); return btoa(s); };
  const digest = async (name, data) => new Uint8Array(await subtle.digest(name, data));
  const random = (n) => window.crypto.getRandomValues(new Uint8Array(n));
  const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  function pem(label, der) {
    return `-----BEGIN ${label}-----\n${b64(der).replace(/(.{64})/g, "$1\n")}\n-----END ${label}-----\n`;
  }
  async function fetchBytes(url) {
    const r = await fetch(url, { credentials: "same-origin" });
    const type = r.headers.get("content-type") || "";
    return { ok: r.ok, type, bytes: new Uint8Array(await r.arrayBuffer()) };
  }

  const OID = {
    rsa: "1.2.840.113549.1.1.1", sha256WithRSA: "1.2.840.113549.1.1.11", oaep: "1.2.840.113549.1.1.7",
    mgf1: "1.2.840.113549.1.1.8", sha256: "2.16.840.1.101.3.4.2.1", aes256cbc: "2.16.840.1.101.3.4.1.42",
    data: "1.2.840.113549.1.7.1", signedData: "1.2.840.113549.1.7.2", envelopedData: "1.2.840.113549.1.7.3",
    contentType: "1.2.840.113549.1.9.3", messageDigest: "1.2.840.113549.1.9.4", pkiData: "1.3.6.1.5.5.7.12.2",
    regInfo: "1.3.6.1.5.5.7.7.18", addAttributes: "1.3.6.1.4.1.311.10.10.1", archivedKey: "1.3.6.1.4.1.311.21.13",
    encryptedKeyHash: "1.3.6.1.4.1.311.21.21", caExchange: "1.3.6.1.4.1.311.21.5", cn: "2.5.4.3",
    ecdsaSha256: "1.2.840.10045.4.3.2", ecdsaSha384: "1.2.840.10045.4.3.3", ecPublicKey: "1.2.840.10045.2.1",
    pbes2: "1.2.840.113549.1.5.13", pbkdf2: "1.2.840.113549.1.5.12", hmacSha256: "1.2.840.113549.2.9",
    shroudedKeyBag: "1.2.840.113549.1.12.10.1.2", certBag: "1.2.840.113549.1.12.10.1.3",
    x509Certificate: "1.2.840.113549.1.9.22.1", localKeyId: "1.2.840.113549.1.9.21", friendlyName: "1.2.840.113549.1.9.20",
  };

  // ---------- the CA exchange certificate ----------
  function ecdsaRaw(sigDer, size) {
    const s = read(sigDer, 0);
    const [r, ss] = children(s, sigDer);
    const fix = (x) => { let b = x.body; while (b.length > size && b[0] === 0) b = b.subarray(1); const o = new Uint8Array(size); o.set(b, size - b.length); return o; };
    return concat(fix(r), fix(ss));
  }
  async function verifyIssuedBy(cert, caCert) {
    if (!equal(cert.issuer, caCert.subject)) throw new Error("the exchange certificate was not issued by this CA");
    let key, params, sig = cert.signature;
    if (cert.sigAlg === OID.sha256WithRSA) {
      key = await subtle.importKey("spki", caCert.spki, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
      params = { name: "RSASSA-PKCS1-v1_5" };
    } else if (cert.sigAlg === OID.ecdsaSha256 || cert.sigAlg === OID.ecdsaSha384) {
      const p384 = caCert.publicKeyBits.length > 70;
      key = await subtle.importKey("spki", caCert.spki, { name: "ECDSA", namedCurve: p384 ? "P-384" : "P-256" }, false, ["verify"]);
      params = { name: "ECDSA", hash: cert.sigAlg === OID.ecdsaSha384 ? "SHA-384" : "SHA-256" };
      sig = ecdsaRaw(sig, p384 ? 48 : 32);
    } else throw new Error("unsupported CA signature algorithm " + cert.sigAlg);
    if (!(await subtle.verify(params, key, sig, cert.tbs))) throw new Error("the exchange certificate's signature does not verify");
  }
  async function exchangeCertificate() {
    const caDer = await caCertificate();
    const x = await fetchBytes("/api/v1/ca/exchange?format=der");
    if (!x.ok) throw new Error("could not fetch the CA exchange certificate");
    const caCert = parseCertificate(caDer);
    const xchg = parseCertificate(x.bytes);
    await verifyIssuedBy(xchg, caCert);
    const now = Date.now();
    if (xchg.notBefore > now || xchg.notAfter <= now) throw new Error("the CA exchange certificate is not currently valid");
    if (!xchg.ekus.includes(OID.caExchange)) throw new Error("the certificate has no CA exchange EKU");
    if (xchg.spkiAlg !== OID.rsa) throw new Error("the CA exchange key is not RSA");
    return { xchg, caDer };
  }

  // ---------- request building ----------
  async function newKey(bits) {
    return subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"]);
  }
  async function sign(key, data) {
    return new Uint8Array(await subtle.sign({ name: "RSASSA-PKCS1-v1_5" }, key, data));
  }
  async function pkcs10(keys, cn) {
    const spki = new Uint8Array(await subtle.exportKey("spki", keys.publicKey));
    const name = seq(setOf(seq(oid(OID.cn), utf8(cn))));
    const info = seq(int(0), name, spki, ctx(0, new Uint8Array(0)));
    return { der: seq(info, alg(OID.sha256WithRSA, nul()), bitString(await sign(keys.privateKey, info))), spki };
  }
  async function envelope(plain, xchg) {
    const cek = random(32), iv = random(16);
    const aes = await subtle.importKey("raw", cek, "AES-CBC", false, ["encrypt"]);
    const ct = new Uint8Array(await subtle.encrypt({ name: "AES-CBC", iv }, aes, plain));
    const rsa = await subtle.importKey("spki", xchg.spki, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
    const ek = new Uint8Array(await subtle.encrypt({ name: "RSA-OAEP" }, rsa, cek));
    cek.fill(0);
    const oaepParams = seq(ctx(0, alg(OID.sha256)), ctx(1, alg(OID.mgf1, alg(OID.sha256))));
    const ktri = seq(int(0), seq(xchg.issuer, xchg.serial), alg(OID.oaep, oaepParams), octets(ek));
    const eci = seq(oid(OID.data), alg(OID.aes256cbc, octets(iv)), ctx(0, ct, false));
    return seq(oid(OID.envelopedData), ctx(0, seq(int(0), setOf(ktri), eci)));
  }
  async function archivalRequest(keys, p10, env, template) {
    const hash = await digest("SHA-256", env);
    const controls = [];
    if (template) {
      controls.push(seq(int(100), oid(OID.regInfo), setOf(octets(new TextEncoder().encode(`CertificateTemplate=${template}&`)))));
    }
    const addAttrs = seq(int(0), seq(int(1)), setOf(seq(oid(OID.encryptedKeyHash), setOf(octets(hash)))));
    controls.push(seq(int(101), oid(OID.addAttributes), setOf(addAttrs)));
    const tcr = tlv(0xa0, concat(int(1), p10.der));
    const pkiData = seq(seq(...controls), seq(tcr), seq(), seq());
    const ski = await digest("SHA-1", parseSpkiBits(p10.spki));
    const attrs = [
      seq(oid(OID.contentType), setOf(oid(OID.pkiData))),
      seq(oid(OID.messageDigest), setOf(octets(await digest("SHA-256", pkiData)))),
    ];
    const signedAttrs = setOf(...attrs); // signed as a SET, stored [0] IMPLICIT
    const signature = await sign(keys.privateKey, signedAttrs);
    const signerInfo = seq(
      int(3), ctx(0, ski, false), alg(OID.sha256),
      tlv(0xa0, signedAttrs.subarray(read(signedAttrs, 0).start)),
      alg(OID.rsa, nul()), octets(signature),
      ctx(1, seq(oid(OID.archivedKey), setOf(env))),
    );
    const sd = seq(int(3), setOf(alg(OID.sha256)), seq(oid(OID.pkiData), ctx(0, octets(pkiData))), setOf(signerInfo));
    return seq(oid(OID.signedData), ctx(0, sd));
  }
  function parseSpkiBits(spki) {
    const n = read(spki, 0);
    return children(n, spki)[1].body.subarray(1);
  }

  // ---------- PKCS#12 ----------
  async function pkcs12Kdf(password, salt, iterations, id, n) {
    const v = 64, u = 32;
    const pw = concat(bmp(password), new Uint8Array(2));
    const fill = (src) => { const len = src.length ? v * Math.ceil(src.length / v) : 0; const o = new Uint8Array(len); for (let i = 0; i < len; i++) o[i] = src[i % src.length]; return o; };
    let I = concat(fill(salt), fill(pw));
    const out = new Uint8Array(n);
    for (let done = 0; done < n; done += u) {
      let A = concat(new Uint8Array(v).fill(id), I);
      for (let r = 0; r < iterations; r++) A = await digest("SHA-256", A);
      out.set(A.subarray(0, Math.min(u, n - done)), done);
      if (done + u >= n) break;
      const B = fill(A);
      const next = new Uint8Array(I.length);
      for (let j = 0; j < I.length; j += v) {
        let carry = 1;
        for (let k = v - 1; k >= 0; k--) { const x = I[j + k] + B[k] + carry; next[j + k] = x & 0xff; carry = x >> 8; }
      }
      I = next;
    }
    return out;
  }
  async function pkcs12(pkcs8, certDer, caDer, password, friendly) {
    const enc = new TextEncoder();
    const salt = random(16), iv = random(16), iterations = 600000;
    const base = await subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveKey"]);
    const kek = await subtle.deriveKey({ name: "PBKDF2", salt, iterations, hash: "SHA-256" }, base, { name: "AES-CBC", length: 256 }, false, ["encrypt"]);
    const ct = new Uint8Array(await subtle.encrypt({ name: "AES-CBC", iv }, kek, pkcs8));
    const pbes2 = alg(OID.pbes2, seq(alg(OID.pbkdf2, seq(octets(salt), int(iterations), alg(OID.hmacSha256, nul()))), alg(OID.aes256cbc, octets(iv))));
    const localKeyId = await digest("SHA-1", certDer);
    const attrs = setOf(seq(oid(OID.localKeyId), setOf(octets(localKeyId))), seq(oid(OID.friendlyName), setOf(tlv(0x1e, bmp(friendly)))));
    const keyBag = seq(oid(OID.shroudedKeyBag), ctx(0, seq(pbes2, octets(ct))), attrs);
    const certBag = (der, a) => a ? seq(oid(OID.certBag), ctx(0, seq(oid(OID.x509Certificate), ctx(0, octets(der)))), a)
      : seq(oid(OID.certBag), ctx(0, seq(oid(OID.x509Certificate), ctx(0, octets(der)))));
    const certs = seq(certBag(certDer, attrs), certBag(caDer));
    const dataInfo = (x) => seq(oid(OID.data), ctx(0, octets(x)));
    const authSafe = seq(dataInfo(certs), dataInfo(seq(keyBag)));
    const macSalt = random(16), macIter = 2048;
    const macKey = await subtle.importKey("raw", await pkcs12Kdf(password, macSalt, macIter, 3, 32), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await subtle.sign("HMAC", macKey, authSafe));
    return seq(int(3), dataInfo(authSafe), seq(seq(alg(OID.sha256, nul()), octets(mac)), octets(macSalt), int(macIter)));
  }

  // ---------- keys waiting in this browser (IndexedDB) ----------
  // Each key is sealed (AES-256-GCM) under a key derived with PBKDF2-SHA-256
  // from the password the user chose when requesting (the same password then
  // protects the PKCS #12), and tagged with the signed-in principal. It is
  // stored before the request is sent and removed only once the user has
  // taken the PKCS #12 file, so no failure in between loses it.
  function db() {
    return new Promise((resolve, reject) => {
      const r = indexedDB.open("lockbox-keys", 1);
      r.onupgradeneeded = () => { r.result.createObjectStore("keys", { keyPath: "id" }); };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  function tx(d, mode, f) {
    return new Promise((resolve, reject) => {
      const t = d.transaction("keys", mode);
      const req = f(t.objectStore("keys"));
      t.oncomplete = () => resolve(req && req.result);
      t.onerror = () => reject(t.error);
    });
  }
  async function sealingKey(password, salt) {
    const base = await subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveKey"]);
    return subtle.deriveKey({ name: "PBKDF2", salt, iterations: 600000, hash: "SHA-256" }, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  }
  function currentUser() {
    const el = document.getElementById("lockbox-user");
    return el ? el.textContent : "";
  }
  async function keepKey(pkcs8, spki, template, password) {
    const salt = random(16), iv = random(12);
    const k = await sealingKey(password, salt);
    const sealed = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv }, k, pkcs8));
    const entry = { id: `${location.origin}#${currentUser()}#${b64(random(12))}`, origin: location.origin, user: currentUser(), reqId: null, salt, iv, sealed, spki, template, created: Date.now() };
    await tx(await db(), "readwrite", (s) => s.put(entry));
    return entry;
  }
  async function updateKey(entry) {
    await tx(await db(), "readwrite", (s) => s.put(entry));
  }
  async function myKeys() {
    const all = await tx(await db(), "readonly", (s) => s.getAll());
    return (all || []).filter((x) => x.origin === location.origin && x.user === currentUser());
  }
  async function openKey(entry, password) {
    const k = await sealingKey(password, entry.salt);
    try {
      return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: entry.iv }, k, entry.sealed));
    } catch (e) {
      throw new Error("wrong password (use the one chosen when the certificate was requested)");
    }
  }
  async function forgetKey(entry) {
    await tx(await db(), "readwrite", (s) => s.delete(entry.id));
  }

  // ---------- UI ----------
  function show(el, text, cls) {
    el.textContent = text;
    el.classList.remove("ok", "error", "pending");
    if (cls) el.classList.add(cls);
  }
  function offerDownload(container, bytes, filename, label, entry) {
    const url = URL.createObjectURL(new Blob([bytes], { type: "application/x-pkcs12" }));
    const a = document.createElement("a");
    a.href = url; a.download = filename; a.id = "download-pfx"; a.textContent = label;
    // The browser's copy of the key goes once the user has taken the file.
    a.addEventListener("click", () => { if (entry) forgetKey(entry).catch(() => {}); });
    container.replaceChildren(a);
  }
  async function certificateFor(id) {
    const r = await fetchBytes(`certnew.cer?ReqID=${id}&Enc=bin`);
    if (r.ok && r.type.startsWith("application/pkix-cert")) return { cert: r.bytes };
    const text = new TextDecoder().decode(r.bytes);
    const m = text.match(/Disposition message:<\/td>\s*([^<]*)/);
    return { message: m ? m[1].trim() : `HTTP ${r.ok ? "OK" : "error"}` };
  }
  async function caCertificate() {
    const ca = await fetchBytes("certnew.cer?ReqID=CACert&Enc=bin");
    if (!ca.ok || !ca.type.startsWith("application/pkix-cert")) throw new Error("could not fetch the CA certificate");
    return ca.bytes;
  }
  async function finish(outEl, dlEl, id, pkcs8, spki, certDer, caDer, password, entry) {
    const cert = parseCertificate(certDer);
    if (!equal(cert.spki, spki)) throw new Error("the issued certificate does not carry this browser's key");
    const pfx = await pkcs12(pkcs8, certDer, caDer, password, `Lockbox request ${id}`);
    offerDownload(dlEl, pfx, `lockbox-${id}.p12`, "Download your certificate and key (PKCS #12)", entry);
    show(outEl, `Certificate issued (request ${id}). Save the PKCS #12 file now: this page is the only place the key exists outside the CA's archive.`, "ok");
  }

  async function enroll(form) {
    const out = document.getElementById("result");
    const dl = document.getElementById("download");
    dl.replaceChildren();
    const f = new FormData(form);
    const template = String(f.get("template") || "").trim();
    const cn = String(f.get("cn") || "").trim();
    const password = String(f.get("password") || "");
    const bits = Number(f.get("bits") || 2048);
    if (!subtle) throw new Error("this browser offers no WebCrypto (the page must be served over HTTPS)");
    if (!cn) throw new Error("enter a name for the certificate subject");
    if (password.length < 8) throw new Error("choose a PKCS #12 password of at least 8 characters");
    show(out, "Checking the CA exchange certificate…");
    const { xchg, caDer } = await exchangeCertificate();
    show(out, "Generating your key…");
    const keys = await newKey(bits);
    const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", keys.privateKey));
    try {
      const p10 = await pkcs10(keys, cn);
      const env = await envelope(pkcs8, xchg);
      const cmc = await archivalRequest(keys, p10, env, template);
      // Kept (sealed) before sending: whatever happens next, the key is not lost.
      const entry = await keepKey(pkcs8, p10.spki, template, password);
      show(out, "Submitting the request…");
      const body = new URLSearchParams({ Mode: "newreq", CertRequest: pem("PKCS7", cmc), CertAttrib: `CertificateTemplate:${template}`, TargetStoreFlags: "0", SaveCert: "yes" });
      const r = await fetch("certfnsh.asp", { method: "POST", credentials: "same-origin", body });
      const html = await r.text();
      let m;
      if ((m = html.match(/certnew\.cer\?ReqID=(\d+)&/))) {
        entry.reqId = Number(m[1]);
        await updateKey(entry);
        const c = await certificateFor(entry.reqId);
        if (!c.cert) throw new Error(`${c.message} (the key stays in this browser: see the status page)`);
        await finish(out, dl, entry.reqId, pkcs8, p10.spki, c.cert, caDer, password, entry);
      } else if ((m = html.match(/Your Request Id is (\d+)/)) && /Certificate Pending/.test(html)) {
        entry.reqId = Number(m[1]);
        await updateKey(entry);
        show(out, `Your certificate request is pending. Your Request Id is ${entry.reqId}. Return to the status page to collect the certificate once a certificate manager has approved it; the key stays in this browser until then, protected by the password you chose.`, "pending");
        const a = document.createElement("a"); a.href = "certckpn.asp"; a.textContent = "View the status of your pending requests"; a.id = "status-link";
        dl.replaceChildren(a);
      } else if ((m = html.match(/The disposition message is "([^"]*)"/))) {
        await forgetKey(entry);
        const t = document.createElement("textarea"); t.innerHTML = m[1];
        throw new Error(`The request was denied: ${t.value}`);
      } else {
        throw new Error(`unexpected answer from the CA (HTTP ${r.status}); the key stays in this browser`);
      }
    } finally {
      pkcs8.fill(0);
    }
  }

  async function refreshPending() {
    const list = document.getElementById("browser-pending");
    if (!list) return;
    const entries = await myKeys();
    list.replaceChildren();
    if (!entries.length) { const p = document.createElement("p"); p.textContent = "This browser holds no request keys of yours."; list.append(p); return; }
    for (const e of entries) {
      const row = document.createElement("div");
      row.className = "pending-entry";
      row.dataset.requestId = String(e.reqId || "");
      const label = document.createElement("span");
      label.textContent = e.reqId
        ? `Request ${e.reqId} (${e.template || "no template"}, ${new Date(e.created).toISOString()}) `
        : `A request not confirmed by the CA (${e.template || "no template"}, ${new Date(e.created).toISOString()}) `;
      const pw = document.createElement("input");
      pw.type = "password"; pw.placeholder = "Password chosen when requesting"; pw.name = `password-${e.reqId}`; pw.autocomplete = "current-password";
      const btn = document.createElement("button");
      btn.type = "button"; btn.textContent = "Check and install"; btn.name = `collect-${e.reqId}`; btn.disabled = !e.reqId;
      const drop = document.createElement("button");
      drop.type = "button"; drop.textContent = "Discard key"; drop.name = `discard-${e.reqId}`;
      const status = document.createElement("span"); status.className = "status";
      const dl = document.createElement("span");
      btn.addEventListener("click", async () => {
        try {
          const c = await certificateFor(e.reqId);
          if (!c.cert) { show(status, ` Not issued yet: ${c.message}`, "pending"); return; }
          const pkcs8 = await openKey(e, pw.value);
          try { await finish(status, dl, e.reqId, pkcs8, e.spki, c.cert, await caCertificate(), pw.value, e); } finally { pkcs8.fill(0); }
        } catch (err) { show(status, ` ${err.message}`, "error"); }
      });
      drop.addEventListener("click", async () => {
        if (!window.confirm("Discard this key? Only a key recovery agent can bring it back.")) return;
        await forgetKey(e); row.remove();
      });
      row.append(label, pw, " ", btn, " ", drop, status, " ", dl);
      list.append(row);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("enroll");
    if (form) {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const btn = document.getElementById("btnEnroll");
        btn.disabled = true;
        try { await enroll(form); } catch (err) { show(document.getElementById("result"), err.message, "error"); }
        finally { btn.disabled = false; }
      });
    }
    refreshPending().catch((err) => { const l = document.getElementById("browser-pending"); if (l) l.textContent = err.message; });
  });
})();

"""Hostile-input catalogue: malformed and malicious inputs against the HTTP
API, the CMC endpoint, the certsrv form and the CLI's file inputs.

Every case must give a clear refusal with a stable machine code (the JSON
`error.status`, certsrv's `Error Number: 0x...`, a CMC failure response, or
the CLI's printed status code / exit code), must not add or change a request
row, and must leave the service answering /health. The table below is the
documentation: one row per case, with what it sends and what it expects.

Usage: catalogue.py BASE_URL CA_PEM ADMIN_TOKEN DB_PATH LOCKBOX_BIN WORKDIR
Prints a JSON summary; exits 1 if any case fails.
"""

import base64
import json
import os
import sqlite3
import subprocess
import sys

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

BASE, CA_PEM, TOKEN, DB, LOCKBOX, WORK = sys.argv[1:7]


def csr(cn="Hostile", key=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


GOOD = csr()
EC_GOOD = csr("Hostile EC", ec.generate_private_key(ec.SECP256R1()))
SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")


def swap(der, old, new):
    assert old in der
    return der.replace(old, new)


def nested(depth):
    body = b"\x05\x00"
    for _ in range(depth):
        n = len(body)
        if n < 128:
            hdr = bytes([0x30, n])
        elif n < 256:
            hdr = bytes([0x30, 0x81, n])
        elif n < 65536:
            hdr = bytes([0x30, 0x82, n >> 8, n & 0xFF])
        else:
            hdr = bytes([0x30, 0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF])
        body = hdr + body
    return body


def bad_utf8_name():
    # the CN value bytes replaced with invalid UTF-8 of the same length
    der = csr("ZZZZZZ")
    return der.replace(b"ZZZZZZ", b"\xff\xfe\xc3\x28\xa0\xa1")


def pem(der, label="CERTIFICATE REQUEST"):
    b = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{b}-----END {label}-----\n".encode()


JSON_CODE = "json"  # body is {"error": {"status": "0x...", ...}}
CERTSRV_CODE = "certsrv"  # HTML with "Error Number: 0x" or "Denied by Policy Module  0x"
CMC_FAIL = "cmc"  # a CMC response (application/pkcs7-mime), HTTP 4xx/200
ANY_4XX = "4xx"  # a 4xx from the HTTP layer (size limit, method, route)
THROTTLED = "429"  # HTTP 429 with Retry-After and the JSON status 0x80070775

octet = {"Content-Type": "application/octet-stream"}
pkcs10 = {"Content-Type": "application/pkcs10"}
cmc = {"Content-Type": "application/pkcs7-mime; smime-type=CMC-request"}
form = {"Content-Type": "application/x-www-form-urlencoded"}
admin = {"Authorization": f"Bearer {TOKEN}"}

# (name, method, path, headers, body, expectation)
HTTP_CASES = [
    ("empty body", "POST", "/api/v1/requests", octet, b"", JSON_CODE),
    ("truncated DER", "POST", "/api/v1/requests", octet, GOOD[: len(GOOD) // 2], JSON_CODE),
    ("truncated by one byte", "POST", "/api/v1/requests", octet, GOOD[:-1], JSON_CODE),
    ("trailing garbage after DER", "POST", "/api/v1/requests", octet, GOOD + b"\x00\x01", JSON_CODE),
    ("overlong length (4 GiB claimed)", "POST", "/api/v1/requests", octet, b"\x30\x84\xff\xff\xff\xff" + GOOD[4:], JSON_CODE),
    ("huge claimed length (8 bytes)", "POST", "/api/v1/requests", octet, b"\x30\x88" + b"\x7f" * 8 + b"\x00" * 32, JSON_CODE),
    ("non-minimal length encoding", "POST", "/api/v1/requests", octet, b"\x30\x82\x00\x03\x02\x01\x00", JSON_CODE),
    ("indefinite length", "POST", "/api/v1/requests", octet, b"\x30\x80" + GOOD[4:] + b"\x00\x00", JSON_CODE),
    ("deep nesting (3000 levels)", "POST", "/api/v1/requests", octet, nested(3000), JSON_CODE),
    ("not DER at all (random bytes)", "POST", "/api/v1/requests", octet, os.urandom(512), JSON_CODE),
    ("wrong top-level tag", "POST", "/api/v1/requests", octet, b"\x31" + GOOD[1:], JSON_CODE),
    ("unknown signature algorithm OID", "POST", "/api/v1/requests", octet, swap(GOOD, SHA256_RSA, bytes.fromhex("06092a864886f70d01017f")), JSON_CODE),
    ("hash mismatch: sha384WithRSA over a SHA-256 signature", "POST", "/api/v1/requests", octet, swap(GOOD, SHA256_RSA, SHA256_RSA[:-1] + b"\x0c"), JSON_CODE),
    ("EC key, RSA algorithm (mismatch)", "POST", "/api/v1/requests", octet, swap(EC_GOOD, ECDSA_SHA256, bytes.fromhex("06082a8648ce3d040303")), JSON_CODE),
    ("bad signature (last byte flipped)", "POST", "/api/v1/requests", octet, GOOD[:-1] + bytes([GOOD[-1] ^ 1]), JSON_CODE),
    ("invalid UTF-8 in subject", "POST", "/api/v1/requests", octet, bad_utf8_name(), JSON_CODE),
    ("PEM with mismatched END label", "POST", "/api/v1/requests", pkcs10, pem(GOOD).replace(b"END CERTIFICATE REQUEST", b"END CERTIFICATE"), JSON_CODE),
    ("PEM with bad base64", "POST", "/api/v1/requests", pkcs10, b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n", JSON_CODE),
    ("PEM armour around a non-SEQUENCE", "POST", "/api/v1/requests", pkcs10, pem(b"\x04\x03abc"), JSON_CODE),
    ("UTF-16 text body", "POST", "/api/v1/requests", pkcs10, pem(GOOD).decode().encode("utf-16"), JSON_CODE),
    ("unknown template", "POST", "/api/v1/requests?template=NoSuchTemplate", octet, GOOD, JSON_CODE),
    ("path-like template name", "POST", "/api/v1/requests?template=..%2F..%2Fetc%2Fpasswd", octet, GOOD, JSON_CODE),
    ("template name with NUL", "POST", "/api/v1/requests?template=User%00x", octet, GOOD, JSON_CODE),
    ("oversized body (2 MiB)", "POST", "/api/v1/requests", octet, b"\x30" * (2 * 1024 * 1024), ANY_4XX),
    ("certificate instead of a request", "POST", "/api/v1/requests", octet, open(CA_PEM, "rb").read(), JSON_CODE),
    ("CMC: random bytes", "POST", "/cmc", cmc, os.urandom(300), CMC_FAIL),
    ("CMC: empty", "POST", "/cmc", cmc, b"", CMC_FAIL),
    ("CMC: a bare PKCS#10 labelled as CMC", "POST", "/cmc", cmc, b"\x30\x80\x00\x00", CMC_FAIL),
    ("CMC: ContentInfo with wrong content type", "POST", "/cmc", cmc, bytes.fromhex("300f06092a864886f70d010701a0020400"), CMC_FAIL),
    ("CMC: deep nesting", "POST", "/cmc", cmc, nested(3000), CMC_FAIL),
    ("API: request ID not a number", "GET", "/api/v1/requests/abc", admin, None, ANY_4XX),
    ("API: request ID overflow", "GET", "/api/v1/requests/99999999999999999999999", admin, None, ANY_4XX),
    ("API: unknown request ID", "GET", "/api/v1/requests/987654", admin, None, JSON_CODE),
    ("API: issue unknown request", "POST", "/api/v1/requests/987654/issue", admin, b"", JSON_CODE),
    ("API: revoke malformed serial", "POST", "/api/v1/certificates/zz..%2F/revoke", {**admin, "Content-Type": "application/json"}, b'{"reason":"keyCompromise"}', JSON_CODE),
    ("API: revoke with unknown reason", "POST", "/api/v1/certificates/01/revoke", {**admin, "Content-Type": "application/json"}, b'{"reason":"because"}', JSON_CODE),
    ("API: revoke with malformed JSON", "POST", "/api/v1/certificates/01/revoke", {**admin, "Content-Type": "application/json"}, b'{"reason":', ANY_4XX),
    ("API: view with SQL-like restriction", "GET", "/api/v1/view?restrict=CommonName%3Dx%27%20OR%201%3D1%20--", admin, None, None),
    ("API: view with broken restriction", "GET", "/api/v1/view?restrict=CommonName%3E%3E%3D", admin, None, JSON_CODE),
    ("API: view with unknown column", "GET", "/api/v1/view?restrict=NoSuchColumn%3D1", admin, None, JSON_CODE),
    ("auth: bogus bearer token", "POST", "/api/v1/requests/1/issue", {"Authorization": "Bearer lbt_nope_nope"}, b"", ANY_4XX),
    ("auth: Basic with invalid base64", "GET", "/api/v1/view", {"Authorization": "Basic !!!"}, None, ANY_4XX),
    ("auth: Basic without colon", "GET", "/api/v1/view", {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}, None, ANY_4XX),
    ("auth: 16 KiB Authorization header", "GET", "/api/v1/view", {"Authorization": "Bearer " + "A" * 16384}, None, ANY_4XX),
    ("auth: spoofed client-certificate header", "GET", "/api/v1/view", {"x-lockbox-client-certificate-sha1": "00" * 20}, None, ANY_4XX),
    ("certsrv: form without CertRequest", "POST", "/certsrv/certfnsh.asp", form, b"Mode=newreq&CertAttrib=", CERTSRV_CODE),
    ("certsrv: garbage CertRequest", "POST", "/certsrv/certfnsh.asp", form, b"Mode=newreq&CertRequest=%3Cscript%3E", CERTSRV_CODE),
    ("certsrv: unsupported Mode", "POST", "/certsrv/certfnsh.asp", form, b"Mode=chkpnd&CertRequest=x", CERTSRV_CODE),
    ("certsrv: invalid percent-encoding", "POST", "/certsrv/certfnsh.asp", form, b"Mode=newreq&CertRequest=%zz%", CERTSRV_CODE),
    ("certsrv: non-UTF-8 form bytes", "POST", "/certsrv/certfnsh.asp", form, b"Mode=newreq&CertRequest=\xff\xfe", CERTSRV_CODE),
    ("certsrv: JSON body instead of a form", "POST", "/certsrv/certfnsh.asp", {"Content-Type": "application/json"}, b'{"Mode":"newreq"}', CERTSRV_CODE),
    ("certsrv: path-like template attribute", "POST", "/certsrv/certfnsh.asp", form, b"Mode=newreq&CertAttrib=CertificateTemplate%3A..%2F..%2Fetc&CertRequest=" + base64.b64encode(GOOD).replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D"), CERTSRV_CODE),
    ("certsrv: cross-site post", "POST", "/certsrv/certfnsh.asp", {**form, "Origin": "https://evil.example"}, b"Mode=newreq&CertRequest=x", ANY_4XX),
    ("certsrv: ReqID path traversal", "GET", "/certsrv/certnew.cer?ReqID=..%2F..%2Fetc%2Fpasswd&Enc=bin", {}, None, CERTSRV_CODE),
    ("certsrv: ReqID overflow", "GET", "/certsrv/certnew.cer?ReqID=99999999999999999999999&Enc=b64", {}, None, CERTSRV_CODE),
    ("certsrv: unknown CA renewal", "GET", "/certsrv/certnew.p7b?ReqID=CACert&Renewal=7", {}, None, CERTSRV_CODE),
    ("certsrv: CertRequest given twice (ambiguous)", "POST", "/certsrv/certfnsh.asp", form, b"Mode=newreq&CertRequest=a&CertRequest=b", CERTSRV_CODE),
    ("API: cross-origin KRA addition (ambient credentials)", "POST", "/api/v1/kra", {**admin, **octet, "Origin": "https://attacker.example"}, open(CA_PEM, "rb").read(), JSON_CODE),
    ("API: cross-origin submission", "POST", "/api/v1/requests", {**octet, "Origin": "null"}, GOOD, JSON_CODE),
    ("console: unknown column chosen", "GET", "/console/requests?view=issued&columns=NoSuchColumn%3Cscript%3E", admin, None, ANY_4XX),
    ("console: unauthenticated page", "GET", "/console/requests?view=pending", {}, None, ANY_4XX),
    ("console: issue without an anti-forgery token", "POST", "/console/requests/1/issue", {**admin, **form}, b"", ANY_4XX),
    ("console: deny with a forged token", "POST", "/console/requests/1/deny", {**admin, **form}, b"csrf=" + b"00" * 32, ANY_4XX),
    ("console: revoke from another origin", "POST", "/console/revoke", {**admin, **form, "Origin": "https://attacker.example"}, b"serial=01&reason=keyCompromise&csrf=x", ANY_4XX),
    ("console: blob download without a token", "POST", "/console/recovery/blob", {**admin, **form}, b"request_id=1", ANY_4XX),
    ("certsrv: status with non-numeric ReqID", "GET", "/certsrv/certckpn.asp?ReqID=1%3Bdrop", {}, None, CERTSRV_CODE),
    ("wrong method on submit", "PUT", "/api/v1/requests", octet, GOOD, ANY_4XX),
    # fix-surface: a request's certificate is its requester's (or a database reader's); IDs cannot be probed
    ("API: certificate of another's request, anonymously", "GET", "/api/v1/requests/1/certificate", {}, None, JSON_CODE),
    ("API: certificate of a missing request, anonymously", "GET", "/api/v1/requests/999999/certificate", {}, None, JSON_CODE),
    # fix-names (issue 12, item 2): anonymous callers (enrollment switched on for this run)
    ("anonymous enrollment for a client-authentication template", "POST", "/api/v1/requests?template=User", octet, GOOD, JSON_CODE),
    ("anonymous enrollment for an archiving template", "POST", "/api/v1/requests?template=ExchangeUser", octet, GOOD, JSON_CODE),
    ("anonymous enrollment for a template named from the requester", "POST", "/api/v1/requests?template=EFS", octet, GOOD, JSON_CODE),
    ("anonymous enrollment on behalf of a principal", "POST", "/api/v1/requests?template=User&on_behalf_of=admin", octet, GOOD, JSON_CODE),
    ("anonymous CMC enrollment on behalf of a principal", "POST", "/cmc?template=User&on_behalf_of=admin", cmc, GOOD, CMC_FAIL),
    # fix-creds: failed logins are audited without the secret and throttled
    # (fix-lockout: 429 after 5 per name from one address, here 127.0.0.1;
    # the per-address limit of 20 must not be reached before the oracle cases
    # below log in as the enrollee from the same address)
    *[(f"auth: password guess {i} for one name", "GET", "/api/v1/view", {"Authorization": "Basic " + base64.b64encode(b"guessme:wrong-%d" % i).decode()}, None, JSON_CODE if i < 5 else THROTTLED) for i in range(7)],
    # the client-sent header does not make the guesser a new source: still 429
    ("auth: client-sent peer address header", "GET", "/api/v1/view", {"X-Lockbox-Peer-Address": "203.0.113.9", "Authorization": "Basic " + base64.b64encode(b"guessme:x").decode()}, None, THROTTLED),
    ("auth: Basic with a 4 KiB user name", "GET", "/api/v1/view", {"Authorization": "Basic " + base64.b64encode(b"u" * 4096 + b":pw").decode()}, None, ANY_4XX),
    ("auth: Basic with control characters in the name", "GET", "/api/v1/view", {"Authorization": "Basic " + base64.b64encode(b"ad\x1b[31mmin\n:pw").decode()}, None, ANY_4XX),
    ("auth: token with a non-hex ID", "GET", "/api/v1/view", {"Authorization": "Bearer lbt_../../x_" + "ab" * 24}, None, ANY_4XX),
    ("auth: token with an empty secret", "GET", "/api/v1/view", {"Authorization": "Bearer lbt_0011223344_"}, None, ANY_4XX),
]


# Exchange-key oracle probes (issue 12, item 1). Each builds an archival
# request with Certipy's own CMC code (certipy.lib.certificate), changing one
# thing, and sends it over the REST API, /cmc and certsrv as the enrolling
# principal (LOCKBOX_HOSTILE_USER / LOCKBOX_HOSTILE_PASSWORD; the CA has a KRA
# configured). Every probe must be refused, and within each front end every
# probe must get the same answer byte for byte: the same HTTP status,
# content type and body, whatever went wrong after the exchange key.
#   signature-key blob header   PRIVATEKEYBLOB with aiKeyAlg = CALG_RSA_SIGN
#   blob one byte short         a truncated PRIVATEKEYBLOB
#   not a key                   random bytes instead of a key blob
#   key of another pair         a valid blob of a key that is not the CSR's
#   rsa padding                 the key-transport block is not PKCS#1 v1.5
ORACLE_PROBES = [
    "signature-key blob header",
    "blob one byte short",
    "not a key",
    "key of another pair",
    "rsa padding",
]


class _BadPaddingKey:
    """The exchange certificate's public key, except that 'encryption' gives
    a block whose PKCS#1 v1.5 padding cannot be valid."""

    def __init__(self, key):
        self._key = key

    def encrypt(self, data, pad):
        return b"\x01" * (self._key.key_size // 8)

    def __getattr__(self, name):
        return getattr(self._key, name)


rsa.RSAPublicKey.register(_BadPaddingKey)


class _Cert:
    def __init__(self, cert, key):
        self._cert, self._key = cert, key

    def public_key(self):
        return self._key

    def __getattr__(self, name):
        return getattr(self._cert, name)


def oracle_requests(xchg_pem):
    import certipy.lib.certificate as cc

    xchg = x509.load_pem_x509_certificate(xchg_pem)
    real_blob = cc.private_key_to_ms_blob
    out = {}
    for probe in ORACLE_PROBES:
        csr, key = cc.create_csr("hostile", None, None, None, "CN=hostile", 2048, None, None)
        cax = xchg
        if probe == "signature-key blob header":
            cc.private_key_to_ms_blob = lambda k: (lambda b: b[:4] + (0x2400).to_bytes(4, "little") + b[8:])(real_blob(k))
        elif probe == "blob one byte short":
            cc.private_key_to_ms_blob = lambda k: real_blob(k)[:-1]
        elif probe == "not a key":
            cc.private_key_to_ms_blob = lambda k: os.urandom(len(real_blob(k)))
        elif probe == "key of another pair":
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            cc.private_key_to_ms_blob = lambda k: real_blob(other)
        elif probe == "rsa padding":
            cax = _Cert(xchg, _BadPaddingKey(xchg.public_key()))
        try:
            out[probe] = cc.create_key_archival(csr, key, cax)
        finally:
            cc.private_key_to_ms_blob = real_blob
    return out


def oracle_cases(client):
    user = os.environ.get("LOCKBOX_HOSTILE_USER")
    password = os.environ.get("LOCKBOX_HOSTILE_PASSWORD")
    if not user or not password:
        return [{"case": "oracle: no enrolling principal given", "ok": False, "detail": "", "health": True}]
    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    xchg = client.get("/api/v1/ca/exchange?format=pem")
    if xchg.status_code != 200:
        return [{"case": "oracle: exchange certificate", "ok": False, "detail": f"HTTP {xchg.status_code}", "health": True}]
    requests = oracle_requests(xchg.content)
    esc = lambda b: base64.b64encode(b).replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")
    fronts = {
        "REST": lambda r: client.post("/api/v1/requests?template=ExchangeUser", headers={**auth, **octet}, content=r),
        "/cmc": lambda r: client.post("/cmc?template=ExchangeUser", headers={**auth, **cmc}, content=r),
        "certsrv": lambda r: client.post(
            "/certsrv/certfnsh.asp",
            headers={**auth, **form},
            content=b"Mode=newreq&TargetStoredFlags=0&SaveCert=yes&CertAttrib=CertificateTemplate%3AExchangeUser&CertRequest=" + esc(r),
        ),
    }
    results = []
    for front, send in fronts.items():
        answers = {}
        for probe, req in requests.items():
            resp = send(req)
            answers[probe] = (resp.status_code, resp.headers.get("content-type", ""), resp.content)
        first = ORACLE_PROBES[0]
        for probe in ORACLE_PROBES:
            a, f = answers[probe], answers[first]
            # the archival refusal itself, not an authentication failure
            if front == "/cmc":
                refused = a[0] == 400 and "pkcs7-mime" in a[1]
            else:
                refused = b"0x8009400c" in a[2].lower()
            same = a == f
            detail = f"HTTP {a[0]} {a[1]}" if same else f"differs from '{first}': HTTP {a[0]} vs {f[0]}: {a[2][:160]!r} vs {f[2][:160]!r}"
            results.append({"case": f"oracle {front}: {probe}", "ok": refused and same and a[0] < 500, "detail": detail, "health": healthy(client)})
    return results


def lockout_cases(client):
    """fix-lockout: a guesser cannot lock the enrollee out. Wrong passwords
    for the enrollee from 127.0.0.2 get 429 after 5; the enrollee with the
    right password from 127.0.0.1 (where the oracle cases then run) still
    signs in."""
    user = os.environ.get("LOCKBOX_HOSTILE_USER")
    password = os.environ.get("LOCKBOX_HOSTILE_PASSWORD")
    if not user or not password:
        return [{"case": "lockout: no enrolling principal given", "ok": False, "detail": "", "health": True}]
    basic = lambda u, p: {"Authorization": "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()}
    results = []
    other = httpx.Client(base_url=BASE, verify=CA_PEM, timeout=30, transport=httpx.HTTPTransport(verify=CA_PEM, local_address="127.0.0.2"))
    try:
        for i in range(7):
            resp = other.get("/api/v1/view", headers=basic(user, f"guess-{i}"))
            ok, detail = judge_http(resp, JSON_CODE if i < 5 else THROTTLED)
            if i < 5:
                ok = ok and resp.status_code != 429
            results.append({"case": f"lockout: guess {i} for the enrollee from 127.0.0.2", "ok": ok, "detail": detail, "health": healthy(client)})
        resp = other.get("/certsrv/", headers=basic(user, password))
        ok, detail = judge_http(resp, THROTTLED)
        results.append({"case": "lockout: the right password from the guessing address is refused unchecked", "ok": ok, "detail": detail, "health": healthy(client)})
    finally:
        other.close()
    resp = client.get("/certsrv/", headers=basic(user, password))
    ok = resp.status_code == 200 and f"Signed in as {user}" in resp.text
    results.append({"case": "lockout: the enrollee still signs in from 127.0.0.1", "ok": ok, "detail": f"HTTP {resp.status_code}", "health": healthy(client)})
    return results


def request_rows():
    """(count, last ID, every row's ID:disposition:revoked_at:key length), read
    with the database's own client: psql for PostgreSQL, sqlite3 for a file."""
    if DB.startswith("postgres"):
        out = subprocess.run(
            ["psql", DB, "-At", "-F", "|", "-c",
             "SELECT COUNT(*), COALESCE(MAX(request_id), 0), "
             "COALESCE(string_agg(request_id || ':' || disposition || ':' || COALESCE(revoked_at::text, '') "
             "|| ':' || LENGTH(COALESCE(archived_key, ''::bytea)), ',' ORDER BY request_id), '') FROM requests"],
            check=True, capture_output=True, text=True).stdout.strip()
        count, last, rows = out.split("|", 2)
        return (int(count), int(last), rows)
    if not os.path.isfile(DB):
        raise SystemExit(f"no database file {DB}")
    con = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    try:
        return con.execute(
            "SELECT COUNT(*), COALESCE(MAX(request_id), 0), "
            "COALESCE(GROUP_CONCAT(request_id || ':' || disposition || ':' || COALESCE(revoked_at, '') || ':' || LENGTH(COALESCE(archived_key, '')), ','), '') "
            "FROM (SELECT * FROM requests ORDER BY request_id)"
        ).fetchone()
    finally:
        con.close()


def healthy(client):
    # A refused oversized body makes the server close that connection; the
    # client may only notice on its next request, so one retry on a fresh one.
    for attempt in range(2):
        try:
            return client.get("/health").status_code == 200
        except httpx.TransportError:
            if attempt:
                raise
    return False


def judge_http(resp, expect):
    if expect is None:  # must simply not fail the server nor leak rows
        return resp.status_code < 500, f"HTTP {resp.status_code}"
    if resp.status_code >= 500:
        return False, f"server error HTTP {resp.status_code}"
    if expect == ANY_4XX:
        return 400 <= resp.status_code < 500, f"HTTP {resp.status_code}"
    if expect == JSON_CODE:
        try:
            status = resp.json()["error"]["status"]
        except Exception:
            return False, f"no JSON error code (HTTP {resp.status_code}): {resp.text[:200]}"
        return resp.status_code >= 400 and status.startswith("0x"), f"HTTP {resp.status_code} {status}"
    if expect == THROTTLED:
        try:
            status = resp.json()["error"]["status"]
        except Exception:
            return False, f"no JSON error code (HTTP {resp.status_code}): {resp.text[:200]}"
        ok = resp.status_code == 429 and status == "0x80070775" and resp.headers.get("retry-after") == "60"
        return ok, f"HTTP {resp.status_code} {status} Retry-After {resp.headers.get('retry-after')}"
    if expect == CERTSRV_CODE:
        ok = "Error Number: 0x" in resp.text or "Denied by Policy Module  0x" in resp.text
        return ok and "<script>" not in resp.text, f"HTTP {resp.status_code}"
    if expect == CMC_FAIL:
        ct = resp.headers.get("content-type", "")
        return "pkcs7-mime" in ct and resp.status_code < 500, f"HTTP {resp.status_code} {ct}"
    return False, "unknown expectation"


def forged_blob():
    """A "recovery blob" signed by a self-made certificate (not the CA), with
    the key and certificate of that signer as the would-be agent."""
    from cryptography.hazmat.primitives.serialization import pkcs7
    import datetime
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Issuing CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    blob = (pkcs7.PKCS7SignatureBuilder().set_data(b"not an envelope")
            .add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))
    paths = {"key": os.path.join(WORK, "forged-kra.key"), "cert": os.path.join(WORK, "forged-kra.pem")}
    with open(paths["key"], "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(paths["cert"], "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    return {**paths, "blob": blob}


def cli_cases():
    """(name, argv, file content or None). Each must fail cleanly: non-zero
    exit, a message on stderr/stdout, no panic."""
    w = lambda n, data: (os.path.join(WORK, n), data)
    forged = forged_blob()
    return [
        ("CLI submit: random bytes", ["submit", "{f}"], w("rand.req", os.urandom(700))),
        ("CLI submit: truncated request", ["submit", "{f}"], w("trunc.req", GOOD[:100])),
        ("CLI submit: deep nesting", ["submit", "{f}"], w("deep.req", nested(3000))),
        ("CLI submit: a directory", ["submit", WORK], None),
        ("CLI submit: missing file", ["submit", os.path.join(WORK, "missing.req")], None),
        ("CLI importkms: garbage PKCS#12", ["importkms", "-p", "x", "{f}"], w("bad.pfx", os.urandom(900))),
        ("CLI importkms: truncated PKCS#12 header", ["importkms", "-p", "x", "{f}"], w("bad2.p12", b"\x30\x82\x10\x00\x02\x01\x03")),
        ("CLI recoverkey: garbage blob", ["recoverkey", "{f}", os.path.join(WORK, "o.pfx"), "--kra-key", "{f}", "--kra-cert", CA_PEM, "-p", "pw"], w("bad.rec", os.urandom(400))),
        ("CLI dump: garbage p7m", ["dump", "{f}"], w("bad.p7m", b"Content-Type: application/pkcs7-mime\r\n\r\n!!!!")),
        ("CLI mergepfx: garbage input", ["mergepfx", "{f},{f}", os.path.join(WORK, "m.pfx"), "-p", "a,a,b"], w("m.pfx.in", os.urandom(300))),
        ("CLI view: broken restriction", ["view", "--restrict", "CommonName>>="], None),
        ("CLI revoke: malformed serial", ["revoke", "zz-not-hex"], None),
        # fix-surface
        ("CLI request new: unknown subject attribute", ["request", "new", "--template", "User", "--subject", "CN=x,NOPE=y", "--out", os.path.join(WORK, "s.req"), "--key-out", os.path.join(WORK, "s.key")], None),
        ("CLI request new: control characters in a country code", ["request", "new", "--template", "User", "--subject", "CN=x,C=\x1b[", "--out", os.path.join(WORK, "s.req"), "--key-out", os.path.join(WORK, "s.key")], None),
        ("CLI config set: a switch that is neither true nor false", ["config", "set", "role_separation", "maybe"], None),
        ("CLI recoverkey: missing password file", ["recoverkey", "{f}", os.path.join(WORK, "o.pfx"), "--kra-key", "{f}", "--kra-cert", CA_PEM, "--password-file", os.path.join(WORK, "missing.pw")], w("bad2.rec", os.urandom(400))),
        # fix-recovery (issue 12 items 6, 12)
        ("CLI recoverkey: blob signed by a certificate that is not the CA", ["recoverkey", "{f}", os.path.join(WORK, "o2.pfx"), "--kra-key", forged["key"], "--kra-cert", forged["cert"], "--ca-cert", CA_PEM, "-p", "pw"], w("forged.rec", forged["blob"])),
        ("CLI kra remove: unknown agent", ["kra", "remove", "00" * 20], None),
    ]


def main():
    results = []
    before = request_rows()
    client = httpx.Client(base_url=BASE, verify=CA_PEM, timeout=30)
    for name, method, path, headers, body, expect in HTTP_CASES:
        try:
            resp = client.request(method, path, headers=headers, content=body)
            ok, detail = judge_http(resp, expect)
        except httpx.HTTPError as e:
            ok, detail = (expect == ANY_4XX and "oversized" in name), f"transport: {e!r}"
        health = healthy(client)
        results.append({"case": name, "ok": ok and health, "detail": detail, "health": health})
    results.extend(lockout_cases(client))
    results.extend(oracle_cases(client))
    env = {k: v for k, v in os.environ.items()}
    for name, argv, f in cli_cases():
        if f:
            with open(f[0], "wb") as fh:
                fh.write(f[1])
        args = [a.replace("{f}", f[0]) if f else a for a in argv]
        p = subprocess.run([LOCKBOX] + args, capture_output=True, env=env, timeout=120)
        text = (p.stdout + p.stderr).decode("utf-8", "replace")
        ok = p.returncode != 0 and "panicked" not in text and len(text.strip()) > 0
        results.append({"case": name, "ok": ok, "detail": f"exit {p.returncode}: {text.strip()[:160]}", "health": True})
    after = request_rows()
    unchanged = before == after
    failed = [r for r in results if not r["ok"]]
    print(json.dumps({"cases": len(results), "failed": failed, "rows_unchanged": unchanged, "rows": [before, after], "results": results}))
    sys.exit(0 if not failed and unchanged else 1)


if __name__ == "__main__":
    main()

"""Web enrollment (/certsrv/) interop: the `certsrv` PyPI client and Certipy's
web enrollment functions, unchanged, against a running Lockbox server.

Usage: certsrv_web.py submit|retrieve|foreign|impacket HOST:PORT CA_PEM USER PASSWORD [REQ_ID|TEMPLATE]

`impacket` runs impacket's ntlmrelayx AD CS attack code (ADCSAttack._run, as
shipped) over a connection that authenticates with Basic instead of a relayed
NTLM session: the requests and the page parsing are impacket's own.
Prints one JSON document with what it saw; any failed check exits non-zero.
"""

import builtins
import json
import logging
import sys

import httpx
from certsrv import (
    CertificatePendingException,
    Certsrv,
    CouldNotRetrieveCertificateException,
    RequestDeniedException,
)
from certipy.lib import req as certipy_req
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


def new_csr(cn):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr


def same_key(cert, key):
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return cert.public_key().public_bytes(enc, pub) == key.public_key().public_bytes(enc, pub)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def impacket_enroll(server, cafile, user, password, template):
    import base64
    import http.client
    import os
    import ssl
    import tempfile
    import types

    from cryptography.hazmat.primitives.serialization import pkcs12
    from impacket.examples.ntlmrelayx.attacks.httpattacks.adcsattack import ADCSAttack

    host, port = server.rsplit(":", 1)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()

    class Authenticated(http.client.HTTPSConnection):
        # ntlmrelayx hands ADCSAttack an already-authenticated connection;
        # here every request carries Basic credentials instead.
        def request(self, method, url, body=None, headers=None, **kw):
            headers = dict(headers or {})
            headers["Authorization"] = f"Basic {token}"
            return super().request(method, url, body=body, headers=headers, **kw)

    ctx = ssl.create_default_context(cafile=cafile)
    loot = tempfile.mkdtemp()
    attack = ADCSAttack.__new__(ADCSAttack)
    attack.client = Authenticated(host, int(port), context=ctx)
    attack.username = user
    attack.config = types.SimpleNamespace(template=template, altName=None, lootdir=loot)
    attack._run()
    pfx = os.path.join(loot, f"{user}.pfx")
    out = {"impacket_pfx": os.path.exists(pfx)}
    if out["impacket_pfx"]:
        with open(pfx, "rb") as f:
            key, cert, _ = pkcs12.load_key_and_certificates(f.read(), None)
        with open(cafile, "rb") as f:
            cert.verify_directly_issued_by(x509.load_pem_x509_certificate(f.read()))
        out["impacket_subject"] = cert.subject.rfc4514_string()
        out["impacket_key_matches"] = same_key(cert, key)
    return out


def main():
    mode, server, cafile, user, password = sys.argv[1:6]
    if mode == "foreign":
        # another principal asks for someone else's certificate and status
        session = httpx.Client(
            base_url=f"https://{server}", auth=httpx.BasicAuth(user, password), verify=cafile
        )
        req_id = sys.argv[6]
        print(json.dumps({
            "cer_status": session.get(f"/certsrv/certnew.cer?ReqID={req_id}&Enc=b64").status_code,
            "p7b_status": session.get(f"/certsrv/certnew.p7b?ReqID={req_id}&Enc=b64").status_code,
            "status_page": session.get(f"/certsrv/certckpn.asp?ReqID={req_id}").status_code,
            "ca_cert_status": session.get("/certsrv/certnew.cer?ReqID=CACert&Enc=b64").status_code,
        }))
        return
    if mode == "impacket":
        print(json.dumps(impacket_enroll(server, cafile, user, password, sys.argv[6])))
        return
    ca = Certsrv(server, user, password, auth_method="basic", cafile=cafile)
    out = {}
    with open(cafile, "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())

    if mode == "retrieve":
        req_id = sys.argv[6]
        pem = ca.get_existing_cert(req_id)
        cert = x509.load_pem_x509_certificate(pem)
        cert.verify_directly_issued_by(ca_cert)
        out["retrieved_subject"] = cert.subject.rfc4514_string()
        session = httpx.Client(
            base_url=f"https://{server}", auth=httpx.BasicAuth(user, password), verify=cafile
        )
        again = certipy_req.web_retrieve(session, int(req_id))
        assert again is not None and again == cert, "Certipy retrieval differs"
        out["certipy_retrieved"] = True
        print(json.dumps(out))
        return

    # credentials
    assert ca.check_credentials(), "valid credentials refused"
    bad = Certsrv(server, user, password + "x", auth_method="basic", cafile=cafile)
    assert not bad.check_credentials(), "wrong password accepted"
    out["credentials_checked"] = True

    # CA certificate (certcarc.asp -> nRenewals -> certnew.cer) and chain (.p7b)
    got = x509.load_pem_x509_certificate(ca.get_ca_cert())
    assert got == ca_cert, "CA certificate differs"
    assert x509.load_der_x509_certificate(ca.get_ca_cert(encoding="bin")) == ca_cert
    chain = pkcs7.load_der_pkcs7_certificates(ca.get_chain(encoding="bin"))
    assert chain and chain[0] == ca_cert, "chain does not start with the CA certificate"
    out["chain_length"] = len(chain)

    # issued at once: PEM and DER
    key, csr = new_csr("Web Alice")
    pem = ca.get_cert(csr.public_bytes(serialization.Encoding.PEM), "User")
    cert = x509.load_pem_x509_certificate(pem)
    cert.verify_directly_issued_by(ca_cert)
    assert same_key(cert, key)
    key2, csr2 = new_csr("Web Alice DER")
    der = ca.get_cert(csr2.public_bytes(serialization.Encoding.PEM), "User", encoding="bin")
    assert same_key(x509.load_der_x509_certificate(der), key2)
    out["issued_subject"] = cert.subject.rfc4514_string()

    # pending: the request ID comes back; the certificate is not there yet
    key3, csr3 = new_csr("Web Bob")
    try:
        ca.get_cert(csr3.public_bytes(serialization.Encoding.PEM), "Approved")
        raise AssertionError("the Approved template issued at once")
    except CertificatePendingException as e:
        out["pending_id"] = int(e.req_id)
    try:
        ca.get_existing_cert(out["pending_id"])
        raise AssertionError("a pending certificate was returned")
    except CouldNotRetrieveCertificateException as e:
        out["pending_message"] = str(e.args[0])

    # refused: an unknown template
    try:
        ca.get_cert(csr3.public_bytes(serialization.Encoding.PEM), "NoSuchTemplate")
        raise AssertionError("an unknown template was accepted")
    except RequestDeniedException as e:
        out["denied_message"] = str(e.args[0])

    # Certipy's web enrollment code, as `certipy req -web` runs it
    builtins.input = lambda *_: "n"
    logs = Collect()
    logging.getLogger().addHandler(logs)
    logging.getLogger().setLevel(logging.INFO)
    session = httpx.Client(
        base_url=f"https://{server}", auth=httpx.BasicAuth(user, password), verify=cafile
    )
    key4, csr4 = new_csr("Certipy Web")
    cert4 = certipy_req.web_request(
        session, user, csr4, ["CertificateTemplate:User"], "User", key4
    )
    assert cert4 is not None and same_key(cert4, key4), "Certipy got no certificate"
    key5, csr5 = new_csr("Certipy Pending")
    assert certipy_req.web_request(
        session, user, csr5, ["CertificateTemplate:Approved"], "Approved", key5
    ) is None
    assert certipy_req.web_request(
        session, user, csr5, ["CertificateTemplate:NoSuchTemplate"], "NoSuchTemplate", key5
    ) is None
    out["certipy_log"] = logs.lines
    joined = "\n".join(logs.lines)
    assert "Certificate request is pending approval" in joined, joined
    assert "is not supported by AD CS" in joined, joined

    # what a browser on another site would send is refused; garbage gets a clear error
    forged = session.post(
        "/certsrv/certfnsh.asp",
        data={"Mode": "newreq", "CertRequest": "MIIB", "CertAttrib": ""},
        headers={"Origin": "https://attacker.example"},
    )
    out["cross_site_status"] = forged.status_code
    junk = session.post(
        "/certsrv/certfnsh.asp",
        data={"Mode": "newreq", "CertRequest": "<script>alert(1)</script>", "CertAttrib": ""},
    )
    out["junk_status"] = junk.status_code
    out["junk_escaped"] = "<script>" not in junk.text
    out["junk_has_error_number"] = "Error Number: 0x" in junk.text
    print(json.dumps(out))


if __name__ == "__main__":
    main()

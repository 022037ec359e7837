#!/usr/bin/python3
"""A SAML IdP built on pysaml2 (Debian's python3-pysaml2), independent of
gatehouse and crewjam/saml: it answers one AuthnRequest with a signed, and
optionally encrypted, assertion. The test runs it with a JSON job on stdin
and posts the base64 Response it prints to gatehouse's ACS."""
import base64
import json
import sys

from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT

job = json.load(sys.stdin)
config = IdPConfig()
config.load({
    "entityid": job["idp_entity_id"],
    "key_file": job["key_file"],
    "cert_file": job["cert_file"],
    "encryption_keypairs": [{"key_file": job["key_file"], "cert_file": job["cert_file"]}],
    "xmlsec_binary": "/usr/bin/xmlsec1",
    "metadata": {"local": [job["sp_metadata"]]},
    "service": {"idp": {
        "endpoints": {"single_sign_on_service": [(job["idp_entity_id"] + "/sso", BINDING_HTTP_REDIRECT)]},
        "name_id_format": [NAMEID_FORMAT_PERSISTENT],
        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
        "want_authn_requests_signed": False,
    }},
})
server = Server(config=config)
if job.get("content_encryption") == "aes256-cbc":
    # pysaml2 7.0 encrypts with 3DES unless told otherwise: choose AES-256-CBC,
    # as an IdP operator would.
    import functools
    import saml2.entity
    from saml2.sigver import pre_encryption_part
    saml2.entity.pre_encryption_part = functools.partial(
        pre_encryption_part, msg_enc="http://www.w3.org/2001/04/xmlenc#aes256-cbc")
    encrypt = server.sec.encrypt_assertion
    server.sec.encrypt_assertion = lambda *a, **kw: encrypt(*a, key_type="aes-256", **kw)
response = server.create_authn_response(
    identity=job["identity"],
    in_response_to=job["request_id"],
    destination=job["acs"],
    sp_entity_id=job["sp_entity_id"],
    name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=job["name_id"]),
    authn={"class_ref": PASSWORDPROTECTEDTRANSPORT},
    sign_response=job.get("sign_response", False),
    sign_assertion=True,
    encrypt_assertion=job.get("encrypt", False),
    encrypt_cert_assertion=job.get("encrypt_cert"),
)
sys.stdout.write(base64.b64encode(str(response).encode("utf-8")).decode("ascii"))

"""A pgrules teacher provider plugin in Python.

pgrules starts this program (through the executable wrapper
pgrules-provider-python-example next to it) as a hashicorp/go-plugin
subprocess and talks gRPC to it. Everything go-plugin expects of a plugin
is here, in the standard library plus Debian's python3-grpcio,
python3-grpc-tools and python3-cryptography:

  * the magic cookie check and the protocol version negotiation;
  * AutoMTLS: the host passes its certificate in PLUGIN_CLIENT_CERT; we
    make our own, serve TLS that requires the host's certificate, and send
    ours back base64-encoded in the handshake line;
  * the handshake line on stdout:
    CORE|APP|tcp|127.0.0.1:PORT|grpc|CERT;
  * the gRPC health service (go-plugin checks service "plugin"), its
    controller (Shutdown) and stdio services;
  * the pgrules.provider.v1.Provider service of providers/proto.

The teacher itself is refine() below: it answers with the draft as it is.
Put your model there. The contract (fields, errors by kind, identity) is in
providers/README.md of the pgrules source.
"""

import concurrent.futures
import datetime
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time

NAME = "python-example"
VERSION = "0.1.0"
APP_PROTOCOL_VERSION = 1  # providers.ProtocolVersion
CORE_PROTOCOL_VERSION = 1  # go-plugin's
MAGIC_COOKIE_KEY = "PGRULES_PROVIDER_PLUGIN"
MAGIC_COOKIE_VALUE = "c2b9f0d4-teacher-provider"

HERE = os.path.dirname(os.path.realpath(__file__))
PROTOS = ["provider.proto", "health.proto", "grpc_controller.proto", "grpc_stdio.proto"]


def log(level, message, **fields):
    """One JSON line on stderr in hclog's shape: pgrules relays it into its
    own log with this level."""
    line = {"@level": level, "@message": message, "@module": NAME,
            "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    line.update(fields)
    sys.stderr.write(json.dumps(line) + "\n")
    sys.stderr.flush()


def fail(message):
    log("error", message)
    sys.exit(1)


def stubs():
    """Generates the Python modules of the .proto files with grpc_tools
    (once per proto content, cached), so they always match the installed
    grpcio, and puts them on sys.path."""
    digest = hashlib.sha256()
    for p in PROTOS:
        with open(os.path.join(HERE, "proto", p), "rb") as f:
            digest.update(f.read())
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    out = os.path.join(cache, "pgrules", "python-plugin-" + digest.hexdigest()[:16])
    if not os.path.exists(os.path.join(out, "provider_pb2_grpc.py")):
        import grpc_tools
        from grpc_tools import protoc
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(out))
        args = ["protoc", "-I" + os.path.join(HERE, "proto"),
                "-I" + os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"),
                "--python_out=" + tmp, "--grpc_python_out=" + tmp] + PROTOS
        if protoc.main(args) != 0:
            fail("cannot generate the gRPC modules from " + os.path.join(HERE, "proto"))
        try:
            os.rename(tmp, out)  # atomic: a plugin started at the same time
        except OSError:          # may have won the race; its copy is the same
            pass
    sys.path.insert(0, out)


def self_signed_cert():
    """A certificate like go-plugin's own (ECDSA, CN and SAN localhost, CA,
    server and client auth), as PEM key, PEM cert and DER cert."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pgrules")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_agreement=True,
                                         key_cert_sign=True, content_commitment=False, data_encipherment=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def refine(system, prompt, draft, payload_type):
    """The teacher: return the refined answer as text (one JSON object).
    This example answers with the draft as it is; a real one calls a
    model with system and prompt (the rendered refine prompt, which holds
    the draft and its critique)."""
    return draft


def main():
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This is a pgrules teacher provider plugin: pgrules starts it, "
                         "you do not (pgrules run --provider %s --plugin-dir %s).\n" % (NAME, HERE))
        sys.exit(1)
    versions = [v for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v]
    if versions and str(APP_PROTOCOL_VERSION) not in versions:
        fail("pgrules speaks provider protocol %s, this plugin %d: update the plugin or pgrules"
             % (",".join(versions), APP_PROTOCOL_VERSION))
    # Ctrl-C reaches the whole process group: pgrules decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # No need to watch pgrules: it starts us with PR_SET_PDEATHSIG, which
    # the wrapper's exec keeps, so the kernel ends us when pgrules dies.
    stubs()

    import grpc
    import grpc_controller_pb2
    import grpc_controller_pb2_grpc
    import grpc_stdio_pb2_grpc
    import health_pb2
    import health_pb2_grpc
    import provider_pb2
    import provider_pb2_grpc

    stopping = threading.Event()

    class Provider(provider_pb2_grpc.ProviderServicer):
        def __init__(self):
            self.model = "python-draft-echo"

        def Describe(self, request, context):
            return provider_pb2.DescribeResponse(name=NAME, version=VERSION, protocol_version=APP_PROTOCOL_VERSION,
                                                 description="Python teacher template: answers with the draft")

        def Configure(self, request, context):
            try:
                cfg = json.loads(request.config_json or b"{}")
            except ValueError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a JSON object: %s" % e)
            if not isinstance(cfg, dict):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a JSON object")
            for key in cfg:
                if key != "model":
                    # "path: message": pgrules reports it at the file:line:col
                    # of providers.<name>.<path>.
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "%s: unknown key (known: model)" % key)
            model = cfg.get("model", self.model)
            if not isinstance(model, str) or not model.strip():
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "model: must be a non-empty string")
            self.model = model
            log("info", "configured", model=model)
            # The identity is everything that changes an answer: the cache
            # keys on it. wants_draft: send us the draft as well.
            identity = json.dumps({"model": model}, sort_keys=True).encode()
            return provider_pb2.ConfigureResponse(identity_json=identity, models=[model], wants_draft=True)

        def Generate(self, request, context):
            start = time.perf_counter()
            if not request.draft.strip():
                # A failure of this sample only (Kind FAILED): it is rejected
                # teacher_error with this code, the run goes on. RETRYABLE
                # (429, 5xx, timeouts) makes pgrules retry with backoff;
                # FATAL (bad key, unknown model) stops the run early.
                return provider_pb2.GenerateResponse(failure=provider_pb2.Failure(
                    kind=provider_pb2.Failure.FAILED, code="empty_draft",
                    message="sample %s has no draft" % request.id,
                    attempts=[provider_pb2.Attempt(model=self.model, code="empty_draft")]))
            text = refine(request.system, request.prompt, request.draft, request.payload_type)
            # usage is left unset: no tokens were counted (unknown, not 0).
            return provider_pb2.GenerateResponse(
                text=text, provider=NAME, selected_model=self.model, chosen_model=self.model,
                attempted_models=[self.model], finish_reason="stop",
                latency_seconds=round(time.perf_counter() - start, 6))

    class Health(health_pb2_grpc.HealthServicer):
        def Check(self, request, context):
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            stopping.set()
            return grpc_controller_pb2.Empty()

    class Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            # Our stdout is the handshake's and our logs go to stderr,
            # which go-plugin reads directly: nothing to stream.
            stopping.wait()
            return iter(())

    client_cert = os.environ.get("PLUGIN_CLIENT_CERT")
    if not client_cert:
        fail("PLUGIN_CLIENT_CERT is not set: pgrules always uses mutual TLS with its plugins")
    key_pem, cert_pem, cert_der = self_signed_cert()
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(),
                                        require_client_auth=True)
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", 64 << 20),
                                  ("grpc.max_send_message_length", 64 << 20)])
    provider_pb2_grpc.add_ProviderServicer_to_server(Provider(), server)
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()

    import base64
    cert_b64 = base64.b64encode(cert_der).decode().rstrip("=")  # RawStdEncoding
    sys.stdout.write("%d|%d|tcp|127.0.0.1:%d|grpc|%s\n" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port, cert_b64))
    sys.stdout.flush()

    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    stopping.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()

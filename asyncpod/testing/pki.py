"""A throwaway certificate authority for the local control plane, made in Python.

Why: kube-apiserver serves TLS only on its secure port and authenticates clients by
certificate; components need their own identities (RBAC binds
system:kube-scheduler and system:kube-controller-manager by CN) and the admin gets
O=system:masters. Generating these with ``cryptography`` keeps the harness free of
openssl/cfssl binaries. Keys are ECDSA P-256 (fast to make); the service-account
signing key is RSA because that is what every token verifier accepts.

Not for production: certificates last 30 days and the CA key sits next to them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ClientIdentity", "Pki", "make_pki"]

_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """A client certificate and key (PEM files) for one component or user."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Pki:
    """Every file the control plane's TLS and service-account tokens need."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    service_account_pub: Path
    admin: ClientIdentity
    controller_manager: ClientIdentity
    scheduler: ClientIdentity
    kwok: ClientIdentity
    # The API server's identity towards real kubelets (pods/log, exec), and each real
    # node's own (CN=system:node:NAME, O=system:nodes, what the Node authorizer wants).
    apiserver_kubelet_client: ClientIdentity
    nodes: Mapping[str, ClientIdentity]


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def make_pki(
    directory: Path,
    *,
    server_ips: tuple[str, ...] = ("127.0.0.1",),
    node_names: Sequence[str] = (),
) -> Pki:
    """Create a CA and every certificate under ``directory`` (which must exist).

    ``node_names``: real nodes (kubelets) that need a client certificate of their own.
    """
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("asyncpod-local-ca")
    ca_subject_key_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        # Key identifiers: Python 3.13's default SSL context verifies strictly
        # (VERIFY_X509_STRICT) and refuses a chain without them.
        .add_extension(ca_subject_key_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def issue(stem: str, subject: x509.Name, *, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(ca_key_id, critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [
                x509.DNSName(dns)
                for dns in (
                    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                )
            ]  # fmt: skip
            names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (*server_ips, "10.96.0.1")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            usage = [ExtendedKeyUsageOID.SERVER_AUTH]
        else:
            usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return (
            _write(directory / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            _write(directory / f"{stem}.key", _key_pem(key), private=True),
        )

    serving_cert, serving_key = issue("apiserver", _name("kube-apiserver"), server=True)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def client(stem: str, common_name: str, organization: str | None = None) -> ClientIdentity:
        cert, key = issue(stem, _name(common_name, organization), server=False)
        return ClientIdentity(cert=cert, key=key)

    return Pki(
        ca_cert=_write(directory / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM)),
        ca_key=_write(directory / "ca.key", _key_pem(ca_key), private=True),
        serving_cert=serving_cert,
        serving_key=serving_key,
        service_account_key=_write(directory / "sa.key", _key_pem(sa_key), private=True),
        service_account_pub=_write(directory / "sa.pub", sa_pub),
        admin=client("admin", "asyncpod-admin", "system:masters"),
        controller_manager=client("controller-manager", "system:kube-controller-manager"),
        scheduler=client("scheduler", "system:kube-scheduler"),
        kwok=client("kwok", "kwok-controller", "system:masters"),
        apiserver_kubelet_client=client(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"
        ),
        nodes={
            name: client(f"node-{name}", f"system:node:{name}", "system:nodes")
            for name in node_names
        },
    )

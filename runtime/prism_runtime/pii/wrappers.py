"""Key-encryption keys behind one interface: a local master key file (the default) or AWS KMS.

A wrapper encrypts ("wraps") data keys; only wrapped data keys are ever stored. The encryption context
passed in names what a key is for (a pseudonymous subject ref and the key id, never PII) and must be the
same to unwrap.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from prism_runtime.drive import offload
from prism_runtime.pii import crypto
from prism_runtime.pii.errors import KeyWrapperUnavailable

MASTER_KEY_ENV = "PRISM_MASTER_KEY_FILE"
KMS_KEY_ENV = "PRISM_KMS_KEY_ID"
DEFAULT_MASTER_KEY_FILE = "prism-master.key"
_KEYSET_FORMAT = "prism-master-keyset/1"


class KeyWrapper(Protocol):
    """The root of the key hierarchy: wraps and unwraps data keys."""

    name: str
    """What errors and `prism keys` name this wrapper by (no secrets)."""

    async def generate(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """Return a new data key and its wrapped form."""
        ...

    async def wrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        """Return `key` wrapped under the current key-encryption key."""
        ...

    async def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Return the data key inside `wrapped`."""
        ...

    def is_current(self, wrapped: bytes) -> bool:
        """Return whether `wrapped` is under the current key-encryption key (else a re-wrap moves it)."""
        ...

    async def rotate(self) -> str:
        """Make a new key-encryption key current, keeping old ones for unwrapping; say what was done."""
        ...


def _context_bytes(context: Mapping[str, str]) -> bytes:
    """Return the associated data a wrapped key is bound to: canonical() of the sorted (name, value) pairs."""
    return crypto.canonical([item for pair in sorted(context.items()) for item in pair])


class LocalKeyWrapper:
    """A master keyset in a local file, created with permissions 0600 when the first key is wrapped.

    Only wrapping a new key creates the file (and only with `create`): reading keys with the file missing is
    an error naming it, never a fresh keyset under which nothing opens.

    The file holds every master key version; the primary one wraps, any one unwraps, so rotation never
    strands a wrapped key. Wrapped keys use the same Tink layout as data, with the master version as key id.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        self.path = Path(path or os.environ.get(MASTER_KEY_ENV) or DEFAULT_MASTER_KEY_FILE)
        self.name = f"local master key file {self.path}"
        self.create = create
        self._primary = 0
        self._keys: dict[int, bytes] = {}
        self._aeads: dict[int, AESGCM] = {}

    def _load(self, *, minting: bool = False) -> None:
        if not self.path.exists():
            if not (minting and self.create):
                raise KeyWrapperUnavailable(
                    "the master keyset file does not exist",
                    backend=self.name,
                    hint=f"point ${MASTER_KEY_ENV} at the file that wrapped this database's keys "
                    "(or run where it lies); `prism keys init` makes one for a new database",
                )
            self._create()
        try:
            data = json.loads(self.path.read_text())
            keys = {int(v): base64.b64decode(k) for v, k in data["keys"].items()}
            primary = int(data["primary"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise KeyWrapperUnavailable(
                f"cannot read the master keyset: {type(error).__name__}",
                backend=self.name,
                hint=f"restore the file from backup or point ${MASTER_KEY_ENV} at it",
            ) from None
        self._keys, self._primary = keys, primary
        self._aeads = {v: AESGCM(k) for v, k in keys.items()}

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write({1: crypto.new_key()}, 1, exclusive=True)

    def _write(self, keys: Mapping[int, bytes], primary: int, *, exclusive: bool = False) -> None:
        text = json.dumps(
            {
                "format": _KEYSET_FORMAT,
                "primary": primary,
                "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(keys.items())},
            },
            indent=2,
        )
        # Written to a 0600 file created here, then moved into place: the key never sits in a wider file.
        target = self.path if exclusive else self.path.with_suffix(".tmp")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            return  # another process created it first; load theirs
        with os.fdopen(fd, "w") as out:
            out.write(text + "\n")
        if not exclusive:
            os.replace(target, self.path)

    def _aead(self, version: int) -> AESGCM:
        if version not in self._keys:
            self._load()  # another process may have rotated
        if version not in self._keys:
            raise KeyWrapperUnavailable(
                f"master key version {version} is not in the keyset", backend=self.name
            )
        return self._aeads[version]

    async def generate(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """Return a new random data key and its wrapped form."""
        key = crypto.new_key()
        return key, await self.wrap(key, context)

    async def generate_many(self, contexts: Sequence[Mapping[str, str]]) -> list[tuple[bytes, bytes]]:
        """Return a new random data key and its wrapped form per context: `generate`, batched.

        The keys and the wrapping nonces come from one read of the OS generator, sliced so no byte is used
        twice; each key is wrapped as `wrap` does, with its own nonce and context.
        """
        if not self._keys:
            self._load(minting=True)
        primary = self._primary
        aead = self._aead(primary)
        prefix = crypto.PREFIX.pack(crypto.FORMAT_V1, primary)
        size, nonce_size = crypto.KEY_SIZE, crypto.NONCE_SIZE
        step = size + nonce_size
        material = os.urandom(step * len(contexts))
        out: list[tuple[bytes, bytes]] = []
        for i, context in enumerate(contexts):
            at = i * step
            key, nonce = material[at : at + size], material[at + size : at + step]
            out.append((key, prefix + nonce + aead.encrypt(nonce, key, prefix + _context_bytes(context))))
        return out

    async def wrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        """Wrap `key` under the primary master key."""
        if not self._keys:
            self._load(minting=True)
        return crypto.seal(self._aead(self._primary), self._primary, key, _context_bytes(context))

    async def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Unwrap with the master key version named in the prefix."""
        try:
            version = crypto.key_id_of(wrapped)
            return crypto.open_sealed(self._aead(version), wrapped, _context_bytes(context))
        except crypto.InvalidCiphertext:
            raise KeyWrapperUnavailable(
                "a wrapped data key does not open under the master keyset (wrong file or tampered key row)",
                backend=self.name,
            ) from None

    def is_current(self, wrapped: bytes) -> bool:
        """Return whether `wrapped` is under the primary master key."""
        if not self._keys:
            self._load()
        try:
            return crypto.key_id_of(wrapped) == self._primary
        except crypto.InvalidCiphertext:
            return False

    async def rotate(self) -> str:
        """Add a new master key version and make it primary."""
        self._load()
        raw = dict(self._keys)
        version = max(raw) + 1
        raw[version] = crypto.new_key()
        self._write(raw, version)
        self._load()
        return f"master key version {version} is now primary in {self.path}"


class KmsKeyWrapper:
    """AWS KMS: GenerateDataKey and Decrypt under one KMS key, with a PII-free encryption context.

    Needs the `kms` extra (boto3). The endpoint, region and credentials come from boto3's usual settings
    (`AWS_ENDPOINT_URL_KMS`, `AWS_REGION`, ...). Calls run on a worker thread, never on the event loop.
    """

    def __init__(self, key_id: str | None = None, *, client: Any = None) -> None:
        chosen = key_id or os.environ.get(KMS_KEY_ENV)
        if not chosen:
            raise KeyWrapperUnavailable(f"no KMS key id: pass one or set ${KMS_KEY_ENV}", backend="aws-kms")
        self.key_id = chosen
        self.name = f"aws-kms {chosen}"
        self._client = client

    @property
    def client(self) -> Any:
        """Return the boto3 KMS client, created on first use."""
        if self._client is None:
            try:
                boto3: Any = importlib.import_module("boto3")
            except ImportError:
                raise KeyWrapperUnavailable(
                    "boto3 is not installed", backend=self.name, hint="pip install 'protoc-gen-prism[kms]'"
                ) from None
            try:
                self._client = boto3.client("kms")
            except Exception as error:  # no region, bad profile: say which, without any secret
                raise KeyWrapperUnavailable(
                    f"cannot make a KMS client: {type(error).__name__}",
                    backend=self.name,
                    hint="set AWS_DEFAULT_REGION (and AWS_ENDPOINT_URL_KMS for a local KMS)",
                ) from None
        return self._client

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await offload(getattr(self.client, operation), **kwargs)
        except KeyWrapperUnavailable:
            raise
        except Exception as error:  # botocore raises many unrelated types; none carries key material
            code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
            raise KeyWrapperUnavailable(f"KMS {operation} failed: {code}", backend=self.name) from None
        return result

    async def generate(self, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """Ask KMS for a new AES-256 data key."""
        out = await self._call(
            "generate_data_key", KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context)
        )
        return bytes(out["Plaintext"]), bytes(out["CiphertextBlob"])

    async def wrap(self, key: bytes, context: Mapping[str, str]) -> bytes:
        """Encrypt an existing data key under the KMS key."""
        out = await self._call("encrypt", KeyId=self.key_id, Plaintext=key, EncryptionContext=dict(context))
        return bytes(out["CiphertextBlob"])

    async def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt a wrapped data key with KMS."""
        out = await self._call(
            "decrypt", KeyId=self.key_id, CiphertextBlob=wrapped, EncryptionContext=dict(context)
        )
        return bytes(out["Plaintext"])

    def is_current(self, wrapped: bytes) -> bool:
        """KMS keeps old key material behind the same key id, so a wrapped key never needs moving."""
        return True

    async def rotate(self) -> str:
        """Leave KMS key material rotation to KMS, which decrypts with old material transparently."""
        return f"{self.name}: key material rotation is KMS's (enable automatic rotation on the key)"


def wrapper_from_env(*, create: bool = True) -> KeyWrapper:
    """Return the KMS wrapper when $PRISM_KMS_KEY_ID is set, else the local master key file.

    With `create` false a missing master key file is an error even when a new key is to be wrapped: what
    tools that only read existing keys (`prism keys status`, `prism audit verify`...) use.
    """
    if os.environ.get(KMS_KEY_ENV):
        return KmsKeyWrapper()
    return LocalKeyWrapper(create=create)

"""Which payload codec a stream entity's events travel with: plain, sealing or cataloguing.

Apart from `stream_codec` because the PII codecs (prism_runtime.pii.payload) build on its PayloadCodec:
the choice depends on both, and neither depends on it. The PII layer is imported only for an entity with
personal data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from google.protobuf.message import Message

from prism_runtime.schema import EntitySpec
from prism_runtime.stream_codec import PayloadCodec

if TYPE_CHECKING:
    from prism_runtime.backends.contract import Backend

M = TypeVar("M", bound=Message)


def payload_codec(spec: EntitySpec, message: type[M], backend: Backend | None = None) -> PayloadCodec[M]:
    """Return the payload codec of an entity: sealing its encrypted fields when it has any.

    `backend` is the stream backend serving the entity; its database's SQL backend keeps the keys, and
    lists every entity with pii fields in its catalog, so `forget` can say what it could not erase.
    """
    kind = "" if backend is None else str(backend.kind)
    if any(c.encrypted for c in spec.columns):
        from prism_runtime.pii.payload import SealedPayloadCodec
        from prism_runtime.pii.vault import keys_home

        return SealedPayloadCodec(spec, message, keys_home(backend, spec), kind)
    if spec.holds_pii:
        from prism_runtime.pii.payload import CataloguedPayloadCodec
        from prism_runtime.pii.vault import catalog_home

        home = catalog_home(backend)
        if home is not None:
            return CataloguedPayloadCodec(spec, message, home, kind)
    return PayloadCodec(spec, message)

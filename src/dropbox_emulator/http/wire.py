"""Dropbox's wire format, taken from the SDK's own stone routes and validators.

Decodes arguments strictly and builds the exact bodies Dropbox answers with (results, 400
texts, 401/409/422/429 JSON with `error_summary`). No I/O here; the routes themselves are in
`handlers.catalogue`.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Optional, Union

from dropbox import auth, common
from dropbox import stone_base as bb
from dropbox import stone_serializers as ss
from dropbox import stone_validators as bv

from dropbox_emulator.handlers.catalogue import RouteInfo

# Content-Type values Dropbox accepts per style (its 400 text lists them the same way).
RPC_CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "text/plain; charset=dropbox-cors-hack",
)
UPLOAD_CONTENT_TYPES = ("application/octet-stream", "text/plain; charset=dropbox-cors-hack")


# ---------------------------------------------------------------------------------------------
# Arguments


class ArgError(Exception):
    """The argument could not be decoded; the message is the part after the function name."""


def decode_arg(info: RouteInfo, raw: Optional[bytes], *, source: str) -> Any:
    """Decode an argument with the route's validator, strictly (unknown fields are refused).

    `source` is "body" (rpc) or "header" (Dropbox-API-Arg); it picks the message prefix Dropbox
    uses. Void arguments accept `null` and an empty body.
    """
    prefix = "request body" if source == "body" else 'HTTP header "Dropbox-API-Arg"'
    text = (raw or b"").strip()
    if info.arg_is_void:
        if text in (b"", b"null"):
            return None
        raise ArgError(f"{prefix}: expected null, got value")
    if not text:
        raise ArgError(f"{prefix}: could not decode input as JSON")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ArgError(f"{prefix}: could not decode input as JSON") from None
    try:
        return json_decode(info.route.arg_type, decoded)
    except bv.ValidationError as exc:
        raise ArgError(f"{prefix}: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # json_decode can trip over odd shapes before the validators get a say.
        raise ArgError(f"{prefix}: could not decode input ({type(exc).__name__})") from None


# How stone's json_compat_obj_decode_helper treats each validator class (its order).
_D_STRUCT_TREE, _D_STRUCT, _D_UNION, _D_LIST, _D_MAP, _D_NULLABLE, _D_PRIMITIVE = range(7)


def _decode_kind(validator_type: type) -> int:
    for base, kind in (
        (bv.StructTree, _D_STRUCT_TREE),
        (bv.Struct, _D_STRUCT),
        (bv.Union, _D_UNION),
        (bv.List, _D_LIST),
        (bv.Map, _D_MAP),
        (bv.Nullable, _D_NULLABLE),
        (bv.Primitive, _D_PRIMITIVE),
    ):
        if issubclass(validator_type, base):
            return kind
    raise AssertionError(f"Cannot handle type {validator_type!r}.")


class _Decoder(ss.PythonPrimitiveToStoneDecoder):
    """`ss.json_decode(..., strict=True)`'s decoder (no permissions, aliases, old style) with
    the dispatch of json_compat_obj_decode_helper (ABC isinstance checks) looked up once per
    validator class: the same objects and ValidationErrors (tests/unit/emulator/test_wire.py),
    for less CPU on a 1000-entry finish_batch_v2 argument."""

    def __init__(self) -> None:
        super().__init__(None, None, False, False, True)
        self._kinds: dict[type, int] = {}

    def json_compat_obj_decode_helper(self, data_type: Any, obj: Any) -> Any:
        kind = self._kinds.get(type(data_type))
        if kind is None:
            kind = self._kinds[type(data_type)] = _decode_kind(type(data_type))
        if kind == _D_STRUCT:
            return self.decode_struct(data_type, obj)
        if kind == _D_PRIMITIVE:
            return self.make_stone_friendly(data_type, obj, False)
        if kind == _D_UNION:
            return self.decode_union(data_type, obj)
        if kind == _D_LIST:
            return self.decode_list(data_type, obj)
        if kind == _D_NULLABLE:
            return self.decode_nullable(data_type, obj)
        if kind == _D_MAP:
            return self.decode_map(data_type, obj)
        return self.decode_struct_tree(data_type, obj)


_DECODER = _Decoder()


def json_decode(validator: Any, text: str) -> Any:
    """What `ss.json_decode(validator, text, strict=True)` returns (see `_Decoder`)."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise bv.ValidationError("could not decode input as JSON") from None
    if isinstance(validator, bv.Primitive):
        return _DECODER.make_stone_friendly(validator, obj, True)
    return _DECODER.json_compat_obj_decode_helper(validator, obj)


def decode_path_root(raw: str) -> common.PathRoot:
    try:
        return ss.json_decode(common.PathRoot_validator, raw, strict=True)
    except (bv.ValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ArgError(f'HTTP header "Dropbox-API-Path-Root": {exc}') from None


# ---------------------------------------------------------------------------------------------
# Bodies


def error_text(info_or_name: Union[RouteInfo, str], message: str) -> str:
    """The 400 text/plain body: `Error in call to API function "files/x": ...`."""
    name = info_or_name.url_name if isinstance(info_or_name, RouteInfo) else str(info_or_name)
    return f'Error in call to API function "{name}": {message}'


def encode_result(info: RouteInfo, result: Any) -> str:
    return json_encode(info.route.result_type, result)


# How stone's encode_sub treats each validator class (its isinstance chain, in its order).
_LIST, _MAP, _NULLABLE, _PRIMITIVE, _STRUCT_TREE, _STRUCT, _UNION = range(7)


def _kind(validator_type: type) -> int:
    for base, kind in (
        (bv.List, _LIST),
        (bv.Map, _MAP),
        (bv.Nullable, _NULLABLE),
        (bv.Primitive, _PRIMITIVE),
        (bv.StructTree, _STRUCT_TREE),
        (bv.Struct, _STRUCT),
        (bv.Union, _UNION),
    ):
        if issubclass(validator_type, base):
            return kind
    raise bv.ValidationError(f"Unsupported data type {validator_type.__name__}")


_PLAIN, _INTEGER, _TIMESTAMP, _VOID, _BYTES = range(5)


def _primitive_kind(validator: Any) -> int:
    if isinstance(validator, bv.Void):
        return _VOID
    if isinstance(validator, bv.Timestamp):
        return _TIMESTAMP
    if isinstance(validator, bv.Bytes):
        return _BYTES
    if isinstance(validator, bv.Integer):
        return _INTEGER
    return _PLAIN


class _Encoder(ss.StoneToPythonPrimitiveSerializer):
    """`ss.json_encode`'s serializer (no caller permissions, aliases or redaction) with its
    per-value dispatch looked up once per validator class and each struct's field list built
    once: the same validation calls and the same JSON, at about half the CPU (the stone
    encoder was a quarter of a finish_batch_v2 entry). tests/unit/emulator/test_wire.py
    compares it with stone's."""

    def __init__(self) -> None:
        super().__init__(None, None, False, False, False)
        self._kinds: dict[type, int] = {}
        self._primitive_kinds: dict[type, int] = {}
        self._fields: dict[Any, list[tuple[str, Any, str]]] = {}

    def encode_sub(self, validator: Any, value: Any) -> Any:
        kind = self._kinds.get(type(validator))
        if kind is None:
            kind = self._kinds[type(validator)] = _kind(type(validator))
        if kind == _PRIMITIVE:
            validator.validate(value)
            return self.encode_primitive(validator, value)
        if kind == _STRUCT:
            validator.validate_type_only(value)
            return self.encode_struct(validator, value)
        if kind == _UNION:
            validator.validate_type_only(value)
            return self.encode_union(validator, value)
        if kind == _LIST:
            validator.validate(value)
            return self.encode_list(validator, value)
        if kind == _NULLABLE:
            validator.validate(value)
            return self.encode_nullable(validator, value)
        if kind == _MAP:
            validator.validate(value)
            return self.encode_map(validator, value)
        validator.validate(value)
        return self.encode_struct_tree(validator, value)

    def encode_primitive(self, validator: Any, value: Any) -> Any:
        # stone's encode_primitive, its isinstance chain (ABC checks) decided once per class.
        kind = self._primitive_kinds.get(type(validator))
        if kind is None:
            kind = self._primitive_kinds[type(validator)] = _primitive_kind(validator)
        if kind == _PLAIN:
            return value
        if kind == _INTEGER:
            return int(value) if isinstance(value, bool) else value
        if kind == _TIMESTAMP:
            return value.strftime(validator.format)
        if kind == _VOID:
            return None
        return base64.b64encode(value).decode("ascii")

    def encode_struct(self, validator: Any, value: Any) -> dict[str, Any]:
        definition = validator.definition
        fields = self._fields.get(definition)
        if fields is None:
            fields = [(name, sub, f"_{name}_value") for name, sub in definition._all_fields_]
            self._fields[definition] = fields
        encoded: dict[str, Any] = {}
        for name, sub, value_key in fields:
            try:
                field_value = getattr(value, name)
            except AttributeError as exc:
                raise bv.ValidationError(exc.args[0]) from None
            if field_value is not None and getattr(value, value_key) is not bb.NOT_SET:
                try:
                    encoded[name] = self.encode_sub(sub, field_value)
                except bv.ValidationError as exc:
                    exc.add_parent(name)
                    raise
        return encoded


_ENCODER = _Encoder()


def json_encode(validator: Any, value: Any) -> str:
    """What `ss.json_encode(validator, value)` returns (see `_Encoder`)."""
    return json.dumps(_ENCODER.encode(validator, value))


def _tag_path(value: Any, depth: int = 0) -> list[str]:
    """Tags of a union value, followed into nested unions and struct fields holding unions."""
    if depth > 8 or not isinstance(value, bb.Union):
        return []
    tags = [value._tag]
    inner = value._value
    if isinstance(inner, bb.Union):
        tags += _tag_path(inner, depth + 1)
    elif isinstance(inner, bb.Struct):
        for name in getattr(inner, "_all_field_names_", ()):
            field = getattr(inner, name, None)
            if isinstance(field, bb.Union):
                tags += _tag_path(field, depth + 1)
                break
    return tags


def error_summary(error: Any) -> str:
    """`path/conflict/file/..`: the tag path, a trailing slash and a few dots.

    Dropbox pads summaries with 0-3 dots, seemingly so clients do not string-match them; we
    derive the count from the text so responses are reproducible.
    """
    summary = "/".join(_tag_path(error)) + "/"
    return summary + "." * (sum(summary.encode()) % 4)


def route_error_body(info: RouteInfo, error: Any) -> str:
    return json.dumps(
        {
            "error_summary": error_summary(error),
            "error": ss.json_compat_obj_encode(info.route.error_type, error),
        }
    )


def auth_error_body(error: auth.AuthError) -> str:
    return json.dumps(
        {
            "error_summary": error_summary(error),
            "error": ss.json_compat_obj_encode(auth.AuthError_validator, error),
        }
    )


def rate_limit_body(reason: str, retry_after: int) -> str:
    if reason not in ("too_many_requests", "too_many_write_operations"):
        raise ValueError(f"unknown rate limit reason {reason!r}")
    error = auth.RateLimitError(getattr(auth.RateLimitReason, reason), retry_after)
    return json.dumps(
        {
            "error_summary": f"{reason}/" + "." * (retry_after % 4),
            "error": ss.json_compat_obj_encode(auth.RateLimitError_validator, error),
        }
    )


def path_root_error_body(error: common.PathRootError) -> str:
    return json.dumps(
        {
            "error_summary": error_summary(error),
            "error": ss.json_compat_obj_encode(common.PathRootError_validator, error),
        }
    )


def header_json(data: str) -> str:
    """HTTP headers carry ASCII only; stone's encoder already escapes, this guarantees it."""
    return data if data.isascii() else json.dumps(json.loads(data))

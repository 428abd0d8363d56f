/* What the native helpers of prism-runtime share: reading protobuf's wire format, and JSON list text.
 *
 * The extension `prism_runtime._wire` is built from this folder (runtime/setup.py):
 *   rows.c       a Plan: an entity's row values read from its messages' wire bytes (prism_runtime.sql.wire_rows)
 *   check.c      the batch input check's common case, which keeps the bytes for the Plan (prism_runtime.inputs)
 *   json_list.c  JSON list text exactly as the Python encoder writes it
 *   buffer.c     the growable byte buffer both of those write into
 *   pgcopy.c     rows as Postgres binary COPY data (prism_runtime.backends.postgres_copy)
 *   module.c     the module
 * Serializing a message is one C call that writes every set field at once; reading those bytes here costs a
 * fraction of reading each field through protobuf's Python API (docs/performance.md, "Round 6").
 */
#ifndef PRISM_WIRE_H
#define PRISM_WIRE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* google.protobuf.FieldDescriptor.TYPE_* */
enum {
    T_DOUBLE = 1, T_FLOAT = 2, T_INT64 = 3, T_UINT64 = 4, T_INT32 = 5, T_FIXED64 = 6, T_FIXED32 = 7,
    T_BOOL = 8, T_STRING = 9, T_GROUP = 10, T_MESSAGE = 11, T_BYTES = 12, T_UINT32 = 13, T_ENUM = 14,
    T_SFIXED32 = 15, T_SFIXED64 = 16, T_SINT32 = 17, T_SINT64 = 18,
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* "SerializeToString", interned (module.c). */
extern PyObject *wire_serialize_name;

/* The Plan type (rows.c), the batch check (check.c), and binary COPY data (pgcopy.c; call
 * wire_pg_copy_ready once first). */
extern PyTypeObject WirePlanType;
PyObject *wire_check_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *wire_pg_copy(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
int wire_pg_copy_ready(void);

/* -- reading the wire -------------------------------------------------------------------------------- */

static inline int read_varint(const uint8_t **at, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *at;
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1)
            return -1;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            *at = p;
            return 0;
        }
    }
    return -1;
}

static inline uint64_t little_endian(const uint8_t *p, int size)
{
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

static inline int wire_type_of(int type)
{
    switch (type) {
    case T_DOUBLE: case T_FIXED64: case T_SFIXED64: return WT_I64;
    case T_FLOAT: case T_FIXED32: case T_SFIXED32: return WT_I32;
    case T_STRING: case T_BYTES: case T_MESSAGE: return WT_LEN;
    case T_GROUP: return WT_SGROUP;
    default: return WT_VARINT;
    }
}

/* Skip one field's payload; -1 when it cannot be skipped here (a group, or past the end). */
static inline int skip(const uint8_t **at, const uint8_t *end, int wire_type)
{
    uint64_t size;
    switch (wire_type) {
    case WT_VARINT:
        return read_varint(at, end, &size);
    case WT_I64:
        size = 8;
        break;
    case WT_I32:
        size = 4;
        break;
    case WT_LEN:
        if (read_varint(at, end, &size) < 0)
            return -1;
        break;
    default:
        return -1;
    }
    if (size > (uint64_t)(end - *at))
        return -1;
    *at += size;
    return 0;
}

/* Read one scalar of `type` whose wire type is its own; its raw bits in *out. */
static inline int read_scalar(const uint8_t **at, const uint8_t *end, int type, uint64_t *out)
{
    int size;
    switch (wire_type_of(type)) {
    case WT_VARINT:
        return read_varint(at, end, out);
    case WT_I64:
        size = 8;
        break;
    default:
        size = 4;
        break;
    }
    if (end - *at < size)
        return -1;
    *out = little_endian(*at, size);
    *at += size;
    return 0;
}


/* A zigzag-encoded sint32 or sint64's value. */
static inline int32_t zigzag32(uint64_t bits)
{
    uint32_t u = (uint32_t)bits;
    return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

static inline int64_t zigzag64(uint64_t bits)
{
    return (int64_t)((bits >> 1) ^ (0ull - (bits & 1)));
}

/* -- a growable byte buffer (buffer.c) --------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t length, capacity;
} Buffer;

/* Make room for `more` bytes after the buffer's length; -1 with MemoryError set. */
int buffer_reserve(Buffer *b, size_t more);

/* -- JSON list text (json_list.c) -------------------------------------------------------------------- */

/* A JSON list written element by element: "[" before the first, "," between, "]" by json_list_text. */
typedef struct {
    Buffer text;
    Py_ssize_t count; /* elements written */
} JsonList;

/* Whether `n` bytes are UTF-8 as Python decodes it strictly. */
int valid_utf8(const uint8_t *s, size_t n);
/* Append a string (valid UTF-8) as json.encoder.encode_basestring writes it; -1 with MemoryError set. */
int json_list_add_string(JsonList *list, const uint8_t *s, size_t n);
/* Append an integer of protobuf `type` from its raw bits, as int.__repr__ writes its value. */
int json_list_add_integer(JsonList *list, int type, uint64_t bits);
/* Return the list's text as a str (it must hold an element), leaving the list to be reset. */
PyObject *json_list_text(JsonList *list);
/* Forget the elements, keeping the memory; json_list_free releases it. */
void json_list_reset(JsonList *list);
void json_list_free(JsonList *list);

#endif

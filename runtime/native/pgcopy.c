/* Rows as the data of a binary COPY (Postgres's "PGCOPY" format), for the Postgres backend's put_many.
 *
 * asyncpg's copy_records_to_table encodes each value through its generic codecs (a dispatch and, for an
 * array, several isinstance checks against the collections ABCs per value), which is most of a bulk
 * write's client time. The rows a put_many sends have a few known column types, so this writes their
 * binary form directly, the same bytes asyncpg would send for the same values (tests/test_pg_copy.py reads
 * both back from a real server). A value it does not take exactly (a type it does not expect, a float
 * beyond float32, a datetime not in UTC) makes the call return None, and the caller hands the rows to
 * asyncpg as before.
 */
#include "wire.h"

#include <datetime.h>
#include <math.h>

/* Column types (prism_runtime.backends.postgres_copy.PgType); ARRAY marks a one-dimensional array of one. */
enum {
    PG_INT4 = 1, PG_INT8 = 2, PG_NUMERIC = 3, PG_FLOAT4 = 4, PG_FLOAT8 = 5, PG_BOOL = 6, PG_TEXT = 7,
    PG_BYTEA = 8, PG_TIMESTAMPTZ = 9, PG_JSONB = 10, PG_LAST = 10, PG_ARRAY = 0x100,
};

/* Element type OIDs of the arrays (pg_type). */
static const int32_t ELEMENT_OID[PG_LAST + 1] = {
    [PG_INT4] = 23, [PG_INT8] = 20, [PG_NUMERIC] = 1700, [PG_FLOAT4] = 700, [PG_FLOAT8] = 701,
    [PG_BOOL] = 16, [PG_TEXT] = 25, [PG_BYTEA] = 17, [PG_TIMESTAMPTZ] = 1184, [PG_JSONB] = 3802,
};

/* What a value's writing came to: written, not taken (the caller falls back), or a Python error. */
enum { PUT_OK = 0, PUT_UNTAKEN = 1, PUT_ERROR = -1 };

/* Network byte order, as every binary value is sent. */
static inline void put_be(Buffer *b, uint64_t value, int size)
{
    for (int i = size - 1; i >= 0; i--)
        b->data[b->length++] = (char)((value >> (8 * i)) & 0xff);
}

static int put_bytes(Buffer *b, const char *bytes, Py_ssize_t size, int prefix_byte)
{
    int extra = prefix_byte >= 0;
    if (size + extra > INT32_MAX || buffer_reserve(b, (size_t)size + 5) < 0)
        return size + extra > INT32_MAX ? PUT_UNTAKEN : PUT_ERROR;
    put_be(b, (uint64_t)(size + extra), 4);
    if (extra)
        b->data[b->length++] = (char)prefix_byte;
    memcpy(b->data + b->length, bytes, (size_t)size);
    b->length += (size_t)size;
    return PUT_OK;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

#define PG_EPOCH_DAYS 10957 /* 2000-01-01, Postgres's epoch, in days from 1970-01-01 */

/* A numeric(20, 0) value: an integer from 0 to 2^64-1, as a Decimal or an int, in base-10000 digits. */
static int put_numeric(Buffer *b, PyObject *value)
{
    PyObject *integer = PyLong_Check(value) ? Py_NewRef(value) : PyNumber_Long(value);
    if (integer == NULL) {
        PyErr_Clear();
        return PUT_UNTAKEN;
    }
    int exact = PyObject_RichCompareBool(integer, value, Py_EQ);
    unsigned long long v = PyLong_AsUnsignedLongLong(integer);
    Py_DECREF(integer);
    if (exact != 1 || PyErr_Occurred()) {
        PyErr_Clear();
        return PUT_UNTAKEN; /* negative, too large, or not whole: asyncpg's to judge */
    }
    uint16_t digits[5];
    int n = 0;
    for (unsigned long long rest = v; rest; rest /= 10000)
        digits[n++] = (uint16_t)(rest % 10000);
    int skip = 0; /* trailing zero digits are not sent */
    while (skip < n && digits[skip] == 0)
        skip++;
    if (buffer_reserve(b, 4 + 8 + 2 * 5) < 0)
        return PUT_ERROR;
    put_be(b, (uint64_t)(8 + 2 * (n - skip)), 4);
    put_be(b, (uint64_t)(n - skip), 2);
    put_be(b, (uint64_t)(uint16_t)(n ? n - 1 : 0), 2); /* weight: of the first digit, in 10000s */
    put_be(b, 0, 2);                                   /* sign: positive */
    put_be(b, 0, 2);                                   /* display scale */
    for (int i = n - 1; i >= skip; i--)
        put_be(b, digits[i], 2);
    return PUT_OK;
}

static int put_value(Buffer *b, int type, PyObject *value)
{
    if (buffer_reserve(b, 4 + 8) < 0)
        return PUT_ERROR;
    switch (type) {
    case PG_INT4:
    case PG_INT8: {
        if (!PyLong_Check(value) || PyBool_Check(value))
            return PUT_UNTAKEN;
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (type == PG_INT4 && (v < INT32_MIN || v > INT32_MAX)))
            return PUT_UNTAKEN;
        put_be(b, type == PG_INT4 ? 4 : 8, 4);
        put_be(b, (uint64_t)v, type == PG_INT4 ? 4 : 8);
        return PUT_OK;
    }
    case PG_FLOAT4:
    case PG_FLOAT8: {
        if (!PyFloat_Check(value))
            return PUT_UNTAKEN; /* asyncpg takes ints too; the codec never gives one here */
        double d = PyFloat_AS_DOUBLE(value);
        if (type == PG_FLOAT8) {
            uint64_t bits;
            memcpy(&bits, &d, 8);
            put_be(b, 8, 4);
            put_be(b, bits, 8);
            return PUT_OK;
        }
        float f = (float)d;
        if (isinf(f) && !isinf(d))
            return PUT_UNTAKEN; /* asyncpg refuses it: out of float32 range */
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_be(b, 4, 4);
        put_be(b, bits, 4);
        return PUT_OK;
    }
    case PG_BOOL:
        if (!PyBool_Check(value))
            return PUT_UNTAKEN;
        put_be(b, 1, 4);
        b->data[b->length++] = value == Py_True;
        return PUT_OK;
    case PG_TEXT:
    case PG_JSONB: {
        if (!PyUnicode_Check(value))
            return PUT_UNTAKEN;
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(value, &size);
        if (text == NULL) {
            PyErr_Clear(); /* a lone surrogate: asyncpg's to refuse */
            return PUT_UNTAKEN;
        }
        return put_bytes(b, text, size, type == PG_JSONB ? 1 : -1); /* jsonb: format version 1, then text */
    }
    case PG_BYTEA:
        if (!PyBytes_Check(value))
            return PUT_UNTAKEN;
        return put_bytes(b, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), -1);
    case PG_TIMESTAMPTZ: {
        if (!PyDateTime_CheckExact(value) || PyDateTime_DATE_GET_TZINFO(value) != PyDateTime_TimeZone_UTC)
            return PUT_UNTAKEN;
        int64_t days = days_from_civil(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                       PyDateTime_GET_DAY(value)) - PG_EPOCH_DAYS;
        int64_t seconds = days * 86400 + PyDateTime_DATE_GET_HOUR(value) * 3600
                          + PyDateTime_DATE_GET_MINUTE(value) * 60 + PyDateTime_DATE_GET_SECOND(value);
        put_be(b, 8, 4);
        put_be(b, (uint64_t)(seconds * 1000000 + PyDateTime_DATE_GET_MICROSECOND(value)), 8);
        return PUT_OK;
    }
    case PG_NUMERIC:
        return put_numeric(b, value);
    default:
        return PUT_UNTAKEN;
    }
}

/* A one-dimensional array of `element` values from a list (an empty one: no dimensions, as asyncpg sends). */
static int put_array(Buffer *b, int element, PyObject *value)
{
    if (!PyList_Check(value) && !PyTuple_Check(value))
        return PUT_UNTAKEN;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
    if (buffer_reserve(b, 4 + 20) < 0)
        return PUT_ERROR;
    size_t start = b->length;
    b->length += 4; /* the array's length, written when known */
    put_be(b, n ? 1 : 0, 4);  /* dimensions */
    put_be(b, 0, 4);          /* no NULL elements (protobuf lists hold none) */
    put_be(b, (uint64_t)ELEMENT_OID[element], 4);
    if (n) {
        put_be(b, (uint64_t)n, 4); /* the dimension's size, */
        put_be(b, 1, 4);           /* and its lower bound */
    }
    PyObject **items = PySequence_Fast_ITEMS(value);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == Py_None)
            return PUT_UNTAKEN;
        int outcome = put_value(b, element, items[i]);
        if (outcome != PUT_OK)
            return outcome;
    }
    size_t size = b->length - start - 4;
    if (size > INT32_MAX)
        return PUT_UNTAKEN;
    size_t end = b->length;
    b->length = start;
    put_be(b, size, 4);
    b->length = end;
    return PUT_OK;
}

/* pg_copy(rows, types, first, last) -> bytes or None: the rows as binary COPY data, with the format's
 * header when `first` and its trailer when `last`; None when a value is not one this writes exactly. */
PyObject *wire_pg_copy(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "pg_copy takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *types = PySequence_Fast(args[1], "types must be a sequence");
    if (types == NULL)
        return NULL;
    int first = PyObject_IsTrue(args[2]), last = PyObject_IsTrue(args[3]);
    PyObject *rows = PySequence_Fast(args[0], "rows must be a sequence");
    Py_ssize_t width = PySequence_Fast_GET_SIZE(types);
    int codes[1600]; /* Postgres's column limit */
    PyObject *result = NULL;
    Buffer b = {NULL, 0, 0};
    if (rows == NULL || first < 0 || last < 0)
        goto done;
    if (width > 1600) {
        PyErr_SetString(PyExc_ValueError, "more columns than a Postgres table holds");
        goto done;
    }
    for (Py_ssize_t i = 0; i < width; i++) {
        long code = PyLong_AsLong(PySequence_Fast_GET_ITEM(types, i));
        int element = (int)(code & 0xff);
        if (code == -1 && PyErr_Occurred())
            goto done;
        if (element < 1 || element > PG_LAST || (code & ~0x1ffL) != 0) {
            PyErr_Format(PyExc_ValueError, "column %zd: no such column type (%ld)", i, code);
            goto done;
        }
        codes[i] = (int)code;
    }
    if (buffer_reserve(&b, 19 + 2) < 0)
        goto done;
    if (first) {
        memcpy(b.data, "PGCOPY\n\377\r\n\0", 11);
        b.length = 11;
        put_be(&b, 0, 4); /* flags: no OIDs */
        put_be(&b, 0, 4); /* no header extension */
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(rows);
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *row = PySequence_Fast_GET_ITEM(rows, r);
        if (!PyTuple_Check(row) && !PyList_Check(row))
            goto untaken;
        if (PySequence_Fast_GET_SIZE(row) != width) {
            PyErr_SetString(PyExc_ValueError, "a row's length is not the number of columns");
            goto done;
        }
        if (buffer_reserve(&b, 2) < 0)
            goto done;
        put_be(&b, (uint64_t)width, 2);
        PyObject **values = PySequence_Fast_ITEMS(row);
        for (Py_ssize_t i = 0; i < width; i++) {
            int outcome;
            if (values[i] == Py_None) {
                if (buffer_reserve(&b, 4) < 0)
                    goto done;
                put_be(&b, UINT32_MAX, 4); /* NULL: length -1 */
                continue;
            }
            if (codes[i] & PG_ARRAY)
                outcome = put_array(&b, codes[i] & 0xff, values[i]);
            else
                outcome = put_value(&b, codes[i], values[i]);
            if (outcome == PUT_ERROR)
                goto done;
            if (outcome == PUT_UNTAKEN)
                goto untaken;
        }
    }
    if (last) {
        if (buffer_reserve(&b, 2) < 0)
            goto done;
        put_be(&b, 0xffff, 2); /* the trailer: a field count of -1 */
    }
    result = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.length);
    goto done;
untaken:
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(b.data);
    Py_XDECREF(rows);
    Py_DECREF(types);
    return result;
}

/* The datetime C API, which the timestamps need; called once from the module's init. */
int wire_pg_copy_ready(void)
{
    PyDateTime_IMPORT;
    return PyDateTimeAPI == NULL ? -1 : 0;
}

/* A Plan: one entity's row values read from its messages' wire bytes (prism_runtime.sql.wire_rows).
 *
 * Built once per (entity, dialect) from the same column list as the Python row encoder, it gives exactly
 * its values (tests/test_wire_rows.py checks that on every field type). Each column has a mode saying how
 * its value is made; anything this file does not read itself is handed back to Python: a column's
 * `convert` (a dialect encoder, or the Python encoder's expression for a message field), and any message
 * whose bytes hold what the plan does not expect (a group, a field with another wire type, a malformed
 * varint) is encoded whole by the Python encoder (`fallback`).
 */
#include "wire.h"

/* How a column's value is made (wire_rows.Mode). */
enum {
    MODE_ABSENT = 0,       /* no field: always the column's absent value (a blind index column) */
    MODE_EXPIRES = 1,      /* no field: the expiry given to the call */
    MODE_SCALAR = 2,       /* a singular scalar: its value, through `convert` when set */
    MODE_JSON_STRINGS = 3, /* a repeated string as JSON text, as json_string_list writes it */
    MODE_JSON_INTS = 4,    /* a repeated integer or enum as JSON text, as json_integer_list writes it */
    MODE_LIST = 5,         /* a repeated scalar as a list, through `convert` when set */
    MODE_TIMESTAMP = 6,    /* a Timestamp: convert((seconds, nanos)) */
    MODE_PRESENT = 7,      /* any other field: convert(message) when the field is on the wire */
};


/* The outcome of reading one message: done, a Python error set, or hand it to the Python encoder. */
enum { READ_OK = 0, READ_ERROR = -1, READ_FALLBACK = 1 };

#define DIRECT 256 /* field numbers below this are found by index, others by a scan of the columns */

typedef struct {
    uint32_t number;
    int type;
    int mode;
    PyObject *absent;  /* the value when the field is not on the wire (the Python encoder's, of an empty message) */
    PyObject *convert; /* None, or what the value goes through */
} Column;


/* One column's value while a message is read. */
typedef struct {
    PyObject *value;   /* MODE_SCALAR: the last value read; MODE_LIST: the list */
    JsonList json;     /* MODE_JSON_*: the elements read so far */
    Py_ssize_t seen;   /* MODE_PRESENT, MODE_TIMESTAMP: occurrences on the wire */
    int64_t seconds;   /* MODE_TIMESTAMP */
    int32_t nanos;
} Slot;

typedef struct {
    PyObject_HEAD
    Py_ssize_t ncolumns;
    Column *columns;
    PyObject *fallback; /* the Python encoder: fallback(message, expires) -> tuple */
    PyObject *serialize; /* the message class's SerializeToString, called with the message */
    int16_t direct[DIRECT];
    Slot *slots;        /* scratch for one message, reused by every call that finds it free */
    int busy;           /* a call is using `slots` (see take_slots) */
} Plan;

static PyObject *number_object(int type, uint64_t bits)
{
    switch (type) {
    case T_DOUBLE: {
        double d;
        memcpy(&d, &bits, sizeof d);
        return PyFloat_FromDouble(d);
    }
    case T_FLOAT: {
        uint32_t u = (uint32_t)bits;
        float f;
        memcpy(&f, &u, sizeof f);
        return PyFloat_FromDouble((double)f);
    }
    case T_INT64: case T_SFIXED64:
        return PyLong_FromLongLong((long long)(int64_t)bits);
    case T_UINT64: case T_FIXED64:
        return PyLong_FromUnsignedLongLong((unsigned long long)bits);
    case T_UINT32: case T_FIXED32:
        return PyLong_FromUnsignedLong((unsigned long)(uint32_t)bits);
    case T_BOOL:
        return PyBool_FromLong(bits != 0);
    case T_SINT32:
        return PyLong_FromLong((long)zigzag32(bits));
    case T_SINT64:
        return PyLong_FromLongLong((long long)zigzag64(bits));
    default: /* int32, sfixed32, enum: the low 32 bits, signed */
        return PyLong_FromLong((long)(int32_t)(uint32_t)bits);
    }
}

/* After a failed decode of a string: bytes that are not UTF-8 are the Python encoder's to judge; any other
 * error (out of memory) stands. */
static int not_utf8(void)
{
    if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        return READ_ERROR;
    PyErr_Clear();
    return READ_FALLBACK;
}

/* The Python value of a string or bytes field's payload: NULL with *outcome READ_FALLBACK for bytes that are
 * not UTF-8 in a string (the Python encoder's to judge), or READ_ERROR for any other error. */
static PyObject *length_delimited_object(int type, const uint8_t *bytes, size_t n, int *outcome)
{
    PyObject *value = type == T_STRING ? PyUnicode_DecodeUTF8((const char *)bytes, (Py_ssize_t)n, NULL)
                                       : PyBytes_FromStringAndSize((const char *)bytes, (Py_ssize_t)n);
    if (value == NULL)
        *outcome = not_utf8();
    return value;
}

/* -- one message --------------------------------------------------------------------------------- */

static inline Py_ssize_t column_of(Plan *plan, uint32_t number)
{
    if (number < DIRECT)
        return plan->direct[number];
    for (Py_ssize_t i = 0; i < plan->ncolumns; i++)
        if (plan->columns[i].number == number && plan->columns[i].mode >= MODE_SCALAR)
            return i;
    return -1;
}

static void clear_slots(Plan *plan, Slot *slots)
{
    for (Py_ssize_t i = 0; i < plan->ncolumns; i++) {
        Slot *slot = &slots[i];
        Py_CLEAR(slot->value);
        json_list_reset(&slot->json);
        slot->seen = 0;
        slot->seconds = 0;
        slot->nanos = 0;
    }
}

/* Read a Timestamp's seconds and nanos, merged into what an earlier occurrence left (as protobuf merges). */
static int read_timestamp(Slot *slot, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint64_t tag, bits;
        if (read_varint(&p, end, &tag) < 0)
            return READ_FALLBACK;
        int wire_type = (int)(tag & 7);
        uint64_t number = tag >> 3;
        if ((number == 1 || number == 2) && wire_type == WT_VARINT) {
            if (read_varint(&p, end, &bits) < 0)
                return READ_FALLBACK;
            if (number == 1)
                slot->seconds = (int64_t)bits;
            else
                slot->nanos = (int32_t)(uint32_t)bits;
        } else if (number == 0 || number == 1 || number == 2 || skip(&p, end, wire_type) < 0) {
            return READ_FALLBACK;
        }
    }
    slot->seen++;
    return READ_OK;
}

/* Add one element of a repeated column (its raw bits, or its bytes for a string or bytes field). */
static int add_element(Column *column, Slot *slot, uint64_t bits, const uint8_t *bytes, size_t n)
{
    PyObject *item;
    int outcome = READ_ERROR;
    if (column->mode == MODE_JSON_INTS)
        return json_list_add_integer(&slot->json, column->type, bits) < 0 ? READ_ERROR : READ_OK;
    if (column->mode == MODE_JSON_STRINGS) {
        /* Only valid UTF-8 is written as is; anything else is the Python encoder's to judge. */
        if (!valid_utf8(bytes, n))
            return READ_FALLBACK;
        return json_list_add_string(&slot->json, bytes, n) < 0 ? READ_ERROR : READ_OK;
    }
    if (column->type == T_STRING || column->type == T_BYTES)
        item = length_delimited_object(column->type, bytes, n, &outcome);
    else
        item = number_object(column->type, bits);
    if (item == NULL)
        return outcome;
    if (slot->value == NULL && (slot->value = PyList_New(0)) == NULL) {
        Py_DECREF(item);
        return READ_ERROR;
    }
    int failed = PyList_Append(slot->value, item);
    Py_DECREF(item);
    return failed ? READ_ERROR : READ_OK;
}

static int read_field(Column *column, Slot *slot, int wire_type, const uint8_t **at, const uint8_t *end)
{
    int own = wire_type_of(column->type);
    uint64_t bits = 0, size;
    switch (column->mode) {
    case MODE_PRESENT:
        if (skip(at, end, wire_type) < 0)
            return READ_FALLBACK;
        slot->seen++;
        return READ_OK;
    case MODE_TIMESTAMP: {
        if (wire_type != WT_LEN || read_varint(at, end, &size) < 0 || size > (uint64_t)(end - *at))
            return READ_FALLBACK;
        const uint8_t *start = *at;
        *at += size;
        return read_timestamp(slot, start, start + size);
    }
    case MODE_SCALAR: {
        PyObject *value;
        int outcome = READ_ERROR;
        if (wire_type != own)
            return READ_FALLBACK;
        if (own == WT_LEN) {
            if (read_varint(at, end, &size) < 0 || size > (uint64_t)(end - *at))
                return READ_FALLBACK;
            value = length_delimited_object(column->type, *at, (size_t)size, &outcome);
            *at += size;
        } else {
            if (read_scalar(at, end, column->type, &bits) < 0)
                return READ_FALLBACK;
            value = number_object(column->type, bits);
        }
        if (value == NULL)
            return outcome;
        Py_XSETREF(slot->value, value); /* the last occurrence wins, as protobuf reads it */
        return READ_OK;
    }
    default: /* repeated: one element in its own wire type, a packed run of numbers, or a string or bytes */
        if (wire_type == own && own != WT_LEN) {
            if (read_scalar(at, end, column->type, &bits) < 0)
                return READ_FALLBACK;
            return add_element(column, slot, bits, NULL, 0);
        }
        if (wire_type != WT_LEN || read_varint(at, end, &size) < 0 || size > (uint64_t)(end - *at))
            return READ_FALLBACK;
        const uint8_t *p = *at, *stop = *at + size;
        *at = stop;
        if (own == WT_LEN)
            return add_element(column, slot, 0, p, (size_t)size);
        while (p < stop) {
            if (read_scalar(&p, stop, column->type, &bits) < 0)
                return READ_FALLBACK;
            int outcome = add_element(column, slot, bits, NULL, 0);
            if (outcome != READ_OK)
                return outcome;
        }
        return READ_OK;
    }
}

static int read_message(Plan *plan, Slot *slots, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint64_t tag;
        if (read_varint(&p, end, &tag) < 0 || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
            return READ_FALLBACK;
        int wire_type = (int)(tag & 7);
        Py_ssize_t index = column_of(plan, (uint32_t)(tag >> 3));
        if (index < 0) {
            if (skip(&p, end, wire_type) < 0)
                return READ_FALLBACK;
            continue;
        }
        int outcome = read_field(&plan->columns[index], &slots[index], wire_type, &p, end);
        if (outcome != READ_OK)
            return outcome;
    }
    return READ_OK;
}

static PyObject *call_or_absent(Column *column, int present, PyObject *argument)
{
    if (!present) {
        if (PyList_CheckExact(column->absent))
            return PyList_New(0); /* a fresh empty list per row: a driver may keep or change it */
        return Py_NewRef(column->absent);
    }
    return PyObject_CallOneArg(column->convert, argument);
}

/* The value of one column after its message was read. */
static PyObject *column_value(Column *column, Slot *slot, PyObject *message, PyObject *expires)
{
    switch (column->mode) {
    case MODE_ABSENT:
        return Py_NewRef(column->absent);
    case MODE_EXPIRES:
        return Py_NewRef(expires);
    case MODE_PRESENT:
        return call_or_absent(column, slot->seen > 0, message);
    case MODE_TIMESTAMP: {
        if (!slot->seen)
            return call_or_absent(column, 0, NULL);
        PyObject *pair = Py_BuildValue("(Li)", (long long)slot->seconds, (int)slot->nanos);
        if (pair == NULL)
            return NULL;
        PyObject *value = PyObject_CallOneArg(column->convert, pair);
        Py_DECREF(pair);
        return value;
    }
    case MODE_JSON_STRINGS:
    case MODE_JSON_INTS: {
        if (!slot->json.count)
            return Py_NewRef(column->absent);
        return json_list_text(&slot->json);
    }
    default: /* MODE_SCALAR, MODE_LIST */
        if (slot->value == NULL)
            return call_or_absent(column, 0, NULL);
        if (column->convert == Py_None)
            return Py_NewRef(slot->value);
        return PyObject_CallOneArg(column->convert, slot->value);
    }
}

/* Encode one message into `row` (a tuple of ncolumns), from its wire bytes when given (`given`, bytes or
 * None: SerializeToString's, which the input check kept); READ_FALLBACK when they need the Python encoder. */
static int encode_into(Plan *plan, Slot *slots, PyObject *message, PyObject *given, PyObject *expires,
                       PyObject **row)
{
    PyObject *wire = given != NULL && PyBytes_CheckExact(given) ? Py_NewRef(given)
                                                                 : PyObject_CallOneArg(plan->serialize, message);
    if (wire == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return READ_ERROR;
        PyErr_Clear(); /* not serializable (a proto2 message missing a required field): Python's to judge */
        return READ_FALLBACK;
    }
    if (!PyBytes_Check(wire)) {
        Py_DECREF(wire);
        return READ_FALLBACK;
    }
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(wire);
    int outcome = read_message(plan, slots, p, p + PyBytes_GET_SIZE(wire));
    Py_DECREF(wire);
    if (outcome == READ_OK) {
        for (Py_ssize_t i = 0; i < plan->ncolumns; i++) {
            row[i] = column_value(&plan->columns[i], &slots[i], message, expires);
            if (row[i] == NULL) {
                while (i--)
                    Py_CLEAR(row[i]);
                outcome = READ_ERROR;
                break;
            }
        }
    }
    clear_slots(plan, slots);
    return outcome;
}

/* -- the Plan type ------------------------------------------------------------------------------- */

static void plan_release(Plan *plan)
{
    if (plan->columns != NULL) {
        for (Py_ssize_t i = 0; i < plan->ncolumns; i++) {
            Py_CLEAR(plan->columns[i].absent);
            Py_CLEAR(plan->columns[i].convert);
        }
        PyMem_Free(plan->columns);
        plan->columns = NULL;
    }
    if (plan->slots != NULL) {
        for (Py_ssize_t i = 0; i < plan->ncolumns; i++) {
            Py_CLEAR(plan->slots[i].value);
            json_list_free(&plan->slots[i].json);
        }
        PyMem_Free(plan->slots);
        plan->slots = NULL;
    }
    Py_CLEAR(plan->fallback);
    Py_CLEAR(plan->serialize);
}

static void plan_dealloc(Plan *plan)
{
    PyObject_GC_UnTrack(plan);
    plan_release(plan);
    Py_TYPE(plan)->tp_free((PyObject *)plan);
}

static int plan_traverse(Plan *plan, visitproc visit, void *arg)
{
    Py_VISIT(plan->fallback);
    Py_VISIT(plan->serialize);
    if (plan->columns != NULL)
        for (Py_ssize_t i = 0; i < plan->ncolumns; i++) {
            Py_VISIT(plan->columns[i].absent);
            Py_VISIT(plan->columns[i].convert);
        }
    return 0;
}

static int plan_clear(Plan *plan)
{
    plan_release(plan);
    plan->ncolumns = 0;
    return 0;
}

/* Plan(columns, fallback, serialize): columns a sequence of (number, type, mode, absent, convert); serialize
 * the message class's SerializeToString, called with each message: an upb message looks any attribute up
 * among its fields first, so the method read from each message would cost a failed field lookup per row. */
static int plan_init(Plan *plan, PyObject *args, PyObject *kwargs)
{
    PyObject *spec, *fallback, *serialize;
    static char *names[] = {"columns", "fallback", "serialize", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:Plan", names, &spec, &fallback, &serialize))
        return -1;
    if (!PyCallable_Check(fallback) || !PyCallable_Check(serialize)) {
        PyErr_SetString(PyExc_TypeError, "fallback and serialize must be callable");
        return -1;
    }
    PyObject *items = PySequence_Fast(spec, "columns must be a sequence");
    if (items == NULL)
        return -1;
    plan_release(plan);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    plan->ncolumns = 0;
    plan->columns = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Column));
    plan->slots = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Slot));
    if (plan->columns == NULL || plan->slots == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < DIRECT; i++)
        plan->direct[i] = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Column *column = &plan->columns[i];
        unsigned long number;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, i), "kiiOO:column", &number, &column->type,
                              &column->mode, &column->absent, &column->convert)) {
            Py_DECREF(items);
            return -1;
        }
        if (column->mode < MODE_ABSENT || column->mode > MODE_PRESENT || number > 0x1fffffff || i >= INT16_MAX
            || (column->mode >= MODE_SCALAR && number == 0)
            || ((column->mode == MODE_TIMESTAMP || column->mode == MODE_PRESENT) && !PyCallable_Check(column->convert))
            || (column->mode == MODE_SCALAR && column->convert != Py_None && !PyCallable_Check(column->convert))) {
            Py_DECREF(items);
            PyErr_Format(PyExc_ValueError, "column %zd: not a column this plan can read", i);
            return -1;
        }
        column->number = (uint32_t)number;
        Py_INCREF(column->absent);
        Py_INCREF(column->convert);
        plan->ncolumns = i + 1;
        if (column->mode >= MODE_SCALAR && number < DIRECT) {
            if (plan->direct[number] >= 0) {
                Py_DECREF(items);
                PyErr_Format(PyExc_ValueError, "field %lu: read by two columns", number);
                return -1;
            }
            plan->direct[number] = (int16_t)i;
        }
    }
    Py_DECREF(items);
    plan->fallback = Py_NewRef(fallback);
    plan->serialize = Py_NewRef(serialize);
    return 0;
}

/* The scratch slots of one call. A call runs Python (a column's convert, the fallback, a finalizer the
 * allocator sets off), which may let another thread in, or come back into this Plan: the Plan's own slots go
 * to the first call, and a call that finds them taken gets slots of its own (give_slots frees them). */
static Slot *take_slots(Plan *plan)
{
    if (plan->serialize == NULL) {
        PyErr_SetString(PyExc_ValueError, "the Plan was not initialized");
        return NULL;
    }
    if (!plan->busy) {
        plan->busy = 1;
        return plan->slots;
    }
    Slot *slots = PyMem_Calloc((size_t)(plan->ncolumns ? plan->ncolumns : 1), sizeof(Slot));
    if (slots == NULL)
        PyErr_NoMemory();
    return slots;
}

static void give_slots(Plan *plan, Slot *slots)
{
    if (slots == plan->slots) {
        plan->busy = 0;
        return;
    }
    for (Py_ssize_t i = 0; i < plan->ncolumns; i++)
        json_list_free(&slots[i].json); /* values were cleared after each message */
    PyMem_Free(slots);
}

/* Encode one message as a new tuple. */
static PyObject *row_of(Plan *plan, Slot *slots, PyObject *message, PyObject *wire, PyObject *expires)
{
    PyObject *row = PyTuple_New(plan->ncolumns);
    if (row == NULL)
        return NULL;
    int outcome = encode_into(plan, slots, message, wire, expires, &PyTuple_GET_ITEM(row, 0));
    if (outcome == READ_OK)
        return row;
    Py_DECREF(row);
    if (outcome == READ_ERROR)
        return NULL;
    return PyObject_CallFunctionObjArgs(plan->fallback, message, expires, NULL);
}

/* Pause the cyclic garbage collector for one batch; return whether it was on (then the caller turns it back
 * on). A batch allocates a row, and on Postgres a list per array, for every message: each allocation counts
 * towards the next collection, and collections that start amid the batch walk the rows made so far again
 * and again (about 2.5 ms of 6 for 10k rows). Paused, the batch's objects are counted all the same, so the
 * first allocation after it collects them once. Nothing is freed late: rows only hold values, no cycles. */
static int pause_collection(void)
{
    return PyGC_Disable();
}

/* The arguments of a batch call: (messages, expires=None, wires=None), wires the messages' wire bytes in the
 * same order (or None); *messages and *wires (NULL when None) are new references to fast sequences. */
static int parse_batch(PyObject *const *args, Py_ssize_t nargs, const char *name, PyObject **messages,
                       PyObject **expires, PyObject **wires)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "%s takes 1 to 3 arguments (%zd given)", name, nargs);
        return -1;
    }
    *expires = nargs >= 2 ? args[1] : Py_None;
    *messages = PySequence_Fast(args[0], "messages must be a sequence");
    if (*messages == NULL)
        return -1;
    *wires = NULL;
    if (nargs == 3 && args[2] != Py_None) {
        *wires = PySequence_Fast(args[2], "wires must be a sequence");
        if (*wires == NULL || PySequence_Fast_GET_SIZE(*wires) != PySequence_Fast_GET_SIZE(*messages)) {
            if (*wires != NULL)
                PyErr_SetString(PyExc_ValueError, "wires must hold one entry per message");
            Py_CLEAR(*wires);
            Py_CLEAR(*messages);
            return -1;
        }
    }
    return 0;
}

/* What every batch call does last: the collector back on, the slots given back, the arguments released. */
static PyObject *end_batch(Plan *plan, Slot *slots, int collecting, PyObject *messages, PyObject *wires,
                           PyObject *out)
{
    if (collecting)
        PyGC_Enable();
    if (slots != NULL)
        give_slots(plan, slots);
    Py_DECREF(messages);
    Py_XDECREF(wires);
    return out;
}

/* row(message, expires=None) -> tuple: the bind values of one message. */
static PyObject *plan_row(Plan *plan, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "row takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Slot *slots = take_slots(plan);
    if (slots == NULL)
        return NULL;
    PyObject *row = row_of(plan, slots, args[0], NULL, nargs == 2 ? args[1] : Py_None);
    give_slots(plan, slots);
    return row;
}

/* rows(messages, expires=None, wires=None) -> list of tuples. */
static PyObject *plan_rows(Plan *plan, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *messages, *expires, *wires;
    if (parse_batch(args, nargs, "rows", &messages, &expires, &wires) < 0)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(messages);
    Slot *slots = take_slots(plan);
    PyObject *out = slots != NULL ? PyList_New(n) : NULL;
    int collecting = pause_collection();
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *wire = wires != NULL ? PySequence_Fast_GET_ITEM(wires, i) : NULL;
        PyObject *row = row_of(plan, slots, PySequence_Fast_GET_ITEM(messages, i), wire, expires);
        if (row == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, row);
    }
    return end_batch(plan, slots, collecting, messages, wires, out);
}

/* flat(messages, expires=None, wires=None) -> list: every message's bind values in one list, row after row. */
static PyObject *plan_flat(Plan *plan, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *messages, *expires, *wires;
    if (parse_batch(args, nargs, "flat", &messages, &expires, &wires) < 0)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(messages), width = plan->ncolumns;
    Slot *slots = take_slots(plan);
    PyObject *out = slots != NULL ? PyList_New(n * width) : NULL;
    int collecting = pause_collection();
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *message = PySequence_Fast_GET_ITEM(messages, i);
        PyObject **row = &PyList_GET_ITEM(out, i * width);
        PyObject *wire = wires != NULL ? PySequence_Fast_GET_ITEM(wires, i) : NULL;
        int outcome = encode_into(plan, slots, message, wire, expires, row);
        if (outcome == READ_FALLBACK) {
            PyObject *values = PyObject_CallFunctionObjArgs(plan->fallback, message, expires, NULL);
            if (values != NULL && (!PyTuple_Check(values) || PyTuple_GET_SIZE(values) != width)) {
                PyErr_SetString(PyExc_TypeError, "the fallback encoder gave a row of another width");
                Py_CLEAR(values);
            }
            if (values != NULL) {
                for (Py_ssize_t j = 0; j < width; j++)
                    row[j] = Py_NewRef(PyTuple_GET_ITEM(values, j));
                Py_DECREF(values);
                outcome = READ_OK;
            } else {
                outcome = READ_ERROR;
            }
        }
        if (outcome == READ_ERROR)
            Py_CLEAR(out); /* the list's unset items are NULL, which its dealloc skips */
    }
    return end_batch(plan, slots, collecting, messages, wires, out);
}

static PyMethodDef plan_methods[] = {
    {"row", (PyCFunction)(void (*)(void))plan_row, METH_FASTCALL,
     "row(message, expires=None) -> tuple: the bind values of one message, in column order."},
    {"rows", (PyCFunction)(void (*)(void))plan_rows, METH_FASTCALL,
     "rows(messages, expires=None, wires=None) -> list: the rows of many messages (wires: their\n"
     "SerializeToString bytes, when the caller has them)."},
    {"flat", (PyCFunction)(void (*)(void))plan_flat, METH_FASTCALL,
     "flat(messages, expires=None, wires=None) -> list: the bind values of many messages in one list, row\n"
     "after row."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject WirePlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prism_runtime._wire.Plan",
    .tp_doc = "Plan(columns, fallback, serialize): how to read one entity's row values from its messages' wire bytes.",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)plan_init,
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_traverse = (traverseproc)plan_traverse,
    .tp_clear = (inquiry)plan_clear,
    .tp_methods = plan_methods,
};


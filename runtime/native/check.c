/* The batch input check's common case in one pass, keeping each message's wire bytes for the Plan
 * (prism_runtime.inputs, message_checks with wire=True). */
#include "wire.h"

/* The last occurrence of field `number` as length-delimited bytes in one message's wire bytes: 1 and its
 * payload when there, 0 when not, -1 when the bytes hold what this reader does not follow (a group). */
static int find_bytes_field(const uint8_t *p, const uint8_t *end, uint32_t number, const uint8_t **at,
                            size_t *size)
{
    int found = 0;
    while (p < end) {
        uint64_t tag, length;
        if (read_varint(&p, end, &tag) < 0 || tag >> 3 == 0)
            return -1;
        int wire_type = (int)(tag & 7);
        if (tag >> 3 != number || wire_type != WT_LEN) {
            if (tag >> 3 == number || skip(&p, end, wire_type) < 0)
                return -1;
            continue;
        }
        if (read_varint(&p, end, &length) < 0 || length > (uint64_t)(end - p))
            return -1;
        *at = p;
        *size = (size_t)length;
        found = 1;
        p += length;
    }
    return found;
}

/* check_batch(messages, cls, number, is_text, max_bytes) -> (wires, distinct) or None.
 *
 * The common case of a batch input check (prism_runtime.inputs), for an entity keyed by one string or bytes
 * field, in one pass: each message is exactly of `cls`, is serialized (wires: the bytes, in order), and its
 * key, read from those bytes, is 1 to `max_bytes` bytes long and, for a string, holds no U+0000; distinct
 * says whether the keys all differ. Any message outside that case returns None, and the Python check then
 * runs, which accepts or raises the error that names it. */
PyObject *wire_check_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "check_batch takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *cls = args[1];
    unsigned long number = PyLong_AsUnsignedLong(args[2]);
    int is_text = PyObject_IsTrue(args[3]);
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred() || is_text < 0)
        return NULL;
    PyObject *serialize = PyObject_GetAttr(cls, wire_serialize_name); /* see plan_init */
    if (serialize == NULL)
        return NULL;
    PyObject *messages = PySequence_Fast(args[0], "messages must be a sequence");
    if (messages == NULL) {
        Py_DECREF(serialize);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(messages);
    PyObject *wires = PyList_New(n), *keys = PySet_New(NULL), *result = NULL;
    if (wires == NULL || keys == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(messages, i);
        if ((PyObject *)Py_TYPE(item) != cls)
            goto defer;
        PyObject *wire = PyObject_CallOneArg(serialize, item);
        if (wire == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                goto done;
            PyErr_Clear();
            goto defer;
        }
        PyList_SET_ITEM(wires, i, wire);
        if (!PyBytes_CheckExact(wire))
            goto defer;
        const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(wire), *key;
        size_t size;
        if (find_bytes_field(p, p + PyBytes_GET_SIZE(wire), (uint32_t)number, &key, &size) != 1 || size < 1
            || size > (size_t)max_bytes || (is_text && memchr(key, 0, size) != NULL))
            goto defer;
        PyObject *value = is_text ? PyUnicode_DecodeUTF8((const char *)key, (Py_ssize_t)size, NULL)
                                  : PyBytes_FromStringAndSize((const char *)key, (Py_ssize_t)size);
        if (value == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                goto done;
            PyErr_Clear();
            goto defer;
        }
        int failed = PySet_Add(keys, value);
        Py_DECREF(value);
        if (failed)
            goto done;
    }
    result = Py_BuildValue("(OO)", wires, PySet_GET_SIZE(keys) == n ? Py_True : Py_False);
    goto done;
defer:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(keys);
    Py_XDECREF(wires);
    Py_DECREF(messages);
    Py_DECREF(serialize);
    return result;
}

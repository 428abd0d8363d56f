/* The module prism_runtime._wire: the Plan type (rows.c), check_batch (check.c) and pg_copy (pgcopy.c). */
#include "wire.h"

PyObject *wire_serialize_name;

static PyMethodDef module_functions[] = {
    {"check_batch", (PyCFunction)(void (*)(void))wire_check_batch, METH_FASTCALL,
     "check_batch(messages, cls, number, is_text, max_bytes) -> (wires, distinct) or None: the common case\n"
     "of a batch input check, in one pass (see prism_runtime.inputs)."},
    {"pg_copy", (PyCFunction)(void (*)(void))wire_pg_copy, METH_FASTCALL,
     "pg_copy(rows, types, first, last) -> bytes or None: rows as Postgres binary COPY data (see\n"
     "prism_runtime.backends.postgres_copy)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "prism_runtime._wire",
    .m_doc = "Rows of bind values read from messages' wire bytes (see prism_runtime.sql.wire_rows).",
    .m_size = -1,
    .m_methods = module_functions,
};

PyMODINIT_FUNC PyInit__wire(void)
{
    wire_serialize_name = PyUnicode_InternFromString("SerializeToString");
    if (wire_serialize_name == NULL || PyType_Ready(&WirePlanType) < 0 || wire_pg_copy_ready() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Plan", (PyObject *)&WirePlanType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

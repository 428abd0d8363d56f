/* The growable byte buffer that JSON list text (json_list.c) and COPY data (pgcopy.c) are written into. */
#include "wire.h"

int buffer_reserve(Buffer *b, size_t more)
{
    if (b->length + more <= b->capacity)
        return 0;
    size_t capacity = b->capacity ? b->capacity : 256;
    while (capacity < b->length + more)
        capacity *= 2;
    char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

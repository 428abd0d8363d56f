/* JSON list text exactly as the Python row encoder writes it (prism_runtime.sql.dialect: json_string_list,
 * json_integer_list), for SQLite's repeated columns. */
#include "wire.h"

/* Whether `n` bytes are UTF-8 as Python decodes it strictly: no overlong form, surrogate or value past U+10FFFF. */
int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t low = 0x80, high = 0xbf; /* the range of the byte after the first */
        if (c >= 0xc2 && c <= 0xdf)
            more = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                low = 0xa0;
            else if (c == 0xed)
                high = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                low = 0x90;
            else if (c == 0xf4)
                high = 0x8f;
        } else
            return 0;
        if (n - i <= more || s[i + 1] < low || s[i + 1] > high)
            return 0;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += more + 1;
    }
    return 1;
}

/* Append a JSON string as json.encoder.encode_basestring writes it (ensure_ascii=False) to a list:
 * only '"', '\\' and control characters are escaped; the bytes are valid UTF-8, checked by the caller. */
int json_list_add_string(JsonList *list, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (buffer_reserve(&list->text, n * 6 + 3) < 0)
        return -1;
    char *out = list->text.data + list->text.length;
    *out++ = list->count++ ? ',' : '[';
    *out++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 0xf];
        }
    }
    *out++ = '"';
    list->text.length = (size_t)(out - list->text.data);
    return 0;
}

/* Append an integer's decimal text, as int.__repr__ writes the value protobuf gives. */
int json_list_add_integer(JsonList *list, int type, uint64_t bits)
{
    if (buffer_reserve(&list->text, 24) < 0)
        return -1;
    char *out = list->text.data + list->text.length;
    *out++ = list->count++ ? ',' : '[';
    int written;
    switch (type) {
    case T_UINT64: case T_FIXED64:
        written = sprintf(out, "%llu", (unsigned long long)bits);
        break;
    case T_UINT32: case T_FIXED32:
        written = sprintf(out, "%lu", (unsigned long)(uint32_t)bits);
        break;
    case T_INT64: case T_SFIXED64:
        written = sprintf(out, "%lld", (long long)(int64_t)bits);
        break;
    case T_SINT32:
        written = sprintf(out, "%ld", (long)zigzag32(bits));
        break;
    case T_SINT64:
        written = sprintf(out, "%lld", (long long)zigzag64(bits));
        break;
    default:
        written = sprintf(out, "%ld", (long)(int32_t)(uint32_t)bits);
    }
    list->text.length = (size_t)(out + written - list->text.data);
    return 0;
}

PyObject *json_list_text(JsonList *list)
{
    if (buffer_reserve(&list->text, 1) < 0)
        return NULL;
    list->text.data[list->text.length++] = ']';
    return PyUnicode_DecodeUTF8(list->text.data, (Py_ssize_t)list->text.length, NULL);
}

void json_list_reset(JsonList *list)
{
    list->text.length = 0;
    list->count = 0;
}

void json_list_free(JsonList *list)
{
    PyMem_Free(list->text.data);
    list->text = (Buffer){NULL, 0, 0};
    list->count = 0;
}

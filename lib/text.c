/* text.c - untrusted text made safe to show; UTF-8 checks. */
#include <string.h>

#include "topowire/text.h"

size_t tw_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

bool tw_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = tw_utf8_decode(u + i, n - i, &cp);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

char *tw_text_show(char *dst, size_t size, const char *src, size_t len)
{
    if (size == 0)
        return dst;
    /* Room for the text; when it is cut, room for "..." too. */
    size_t room = len <= size - 1 ? len : (size >= 4 ? size - 4 : size - 1);
    const unsigned char *u = (const unsigned char *)src;
    size_t i = 0, j = 0;
    /* j never passes i: each byte read gives at most one byte written, so src may be dst. */
    while (i < len) {
        uint32_t cp;
        size_t n = tw_utf8_decode(u + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || cp == 0x7F) {
            if (j + 1 > room)
                break;
            dst[j++] = TW_TEXT_REPLACEMENT;
            i++;
            continue;
        }
        if (j + n > room)
            break;
        memmove(dst + j, src + i, n);
        j += n;
        i += n;
    }
    if (i < len && size >= 4) {
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
    return dst;
}

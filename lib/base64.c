/* base64.c - standard base64 over OpenSSL's block coder, with a strict decoder. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "topowire/base64.h"
#include "topowire/error.h"

size_t tw_base64_encoded_len(size_t n)
{
    return 4 * ((n + 2) / 3);
}

int tw_base64_encode_to(char *dst, const void *data, size_t n)
{
    if (n > TW_BASE64_MAX)
        return TW_ETOOBIG;
    /* EVP_EncodeBlock writes the terminator itself. */
    EVP_EncodeBlock((unsigned char *)dst, data, (int)n);
    return TW_OK;
}

int tw_base64_encode(const void *data, size_t n, char **out)
{
    if (n > TW_BASE64_MAX)
        return TW_ETOOBIG;
    char *s = malloc(tw_base64_encoded_len(n) + 1);
    if (s == NULL)
        return TW_ENOMEM;
    tw_base64_encode_to(s, data, n);
    *out = s;
    return TW_OK;
}

static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int tw_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
    if (len > TW_BASE64_MAX)
        return TW_ETOOBIG;
    /* The text without line breaks; checked here so that OpenSSL sees only clean blocks. */
    char *clean = malloc(len + 1);
    unsigned char *bytes = NULL;
    int rc = TW_EPARSE;
    if (clean == NULL)
        return TW_ENOMEM;
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
        } else if (pad > 0 || sextet(c) < 0) {
            goto out; /* a character after padding, or outside the alphabet */
        }
        clean[n++] = (char)c;
    }
    clean[n] = '\0';
    if (n % 4 != 0 || pad > 2)
        goto out;
    /* The bits the padding leaves over must be zero: one encoding per byte string. */
    if (pad > 0) {
        int last = sextet((unsigned char)clean[n - pad - 1]);
        if ((pad == 1 && (last & 0x03) != 0) || (pad == 2 && (last & 0x0F) != 0))
            goto out;
    }
    bytes = malloc(n / 4 * 3 + 1);
    if (bytes == NULL) {
        rc = TW_ENOMEM;
        goto out;
    }
    int got = n > 0 ? EVP_DecodeBlock(bytes, (const unsigned char *)clean, (int)n) : 0;
    if (got < 0 || (size_t)got < pad)
        goto out;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    size_t m = (size_t)got - pad;
    bytes[m] = '\0';
    *out = bytes;
    *out_len = m;
    bytes = NULL;
    rc = TW_OK;
out:
    /* The text may be a private key: wipe what is not handed out. */
    if (bytes != NULL) {
        OPENSSL_cleanse(bytes, n / 4 * 3 + 1);
        free(bytes);
    }
    OPENSSL_cleanse(clean, len + 1);
    free(clean);
    return rc;
}

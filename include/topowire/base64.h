/* base64.h - standard base64 (RFC 4648, with padding) over OpenSSL. */
#ifndef TOPOWIRE_BASE64_H
#define TOPOWIRE_BASE64_H

#include <stddef.h>

/* Largest input either way, in bytes: OpenSSL's block calls take an int. */
#define TW_BASE64_MAX (64u * 1024 * 1024)

/*
 * Bytes of base64 text for n bytes of data, without a terminator:
 * 4 * ceil(n / 3). Cannot fail.
 */
size_t tw_base64_encoded_len(size_t n);

/*
 * Encodes n bytes at data into dst, which must hold tw_base64_encoded_len(n)
 * + 1 bytes; dst is NUL-terminated. Returns 0 or TW_ETOOBIG (n over
 * TW_BASE64_MAX). Borrows both.
 */
int tw_base64_encode_to(char *dst, const void *data, size_t n);

/*
 * Encodes n bytes at data as a new NUL-terminated string in *out (caller
 * frees; written only on success). Returns 0, TW_ETOOBIG or TW_ENOMEM.
 */
int tw_base64_encode(const void *data, size_t n, char **out);

/*
 * Decodes len bytes of base64 text strictly, as Go's base64.StdEncoding
 * decodes a Kubernetes []byte field (a kubeconfig's *-data, a Secret's
 * data, a webhook's caBundle): line breaks (CR, LF) anywhere are skipped,
 * since a YAML literal block may wrap the text; any other character outside
 * the alphabet (spaces included), a length that is not a multiple of four,
 * padding anywhere but the end, or padding bits that are not zero is an
 * error. Empty text decodes to zero bytes.
 *
 * Returns 0 and a new buffer in *out (caller frees) holding the bytes and a
 * NUL after them, their count in *out_len; both written only on success.
 * Errors: TW_EPARSE (not such base64), TW_ETOOBIG (len over
 * TW_BASE64_MAX), TW_ENOMEM. Borrows text.
 */
int tw_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

#endif

/* dnsname.c - RFC 1123 DNS labels and subdomains. */
#include <string.h>

#include "topowire/dnsname.h"

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* n bytes at s form one label: 1..63 of [a-z0-9-] with a letter or digit at both ends. */
static bool label_valid(const char *s, size_t n)
{
    if (n == 0 || n > TW_DNS_LABEL_MAX || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool tw_dns_label_valid(const char *s)
{
    return s != NULL && label_valid(s, strlen(s));
}

bool tw_dns_subdomain_valid_n(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > TW_DNS_SUBDOMAIN_MAX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.')
            continue;
        if (!label_valid(s + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

bool tw_dns_subdomain_valid(const char *s)
{
    return s != NULL && tw_dns_subdomain_valid_n(s, strlen(s));
}

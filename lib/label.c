/* label.c - Kubernetes label key and value syntax. */
#include <string.h>

#include "topowire/dnsname.h"
#include "topowire/label.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name: 1..63 of [A-Za-z0-9._-], alphanumeric at both ends. */
static bool name_valid(const char *s, size_t n)
{
    if (n == 0 || n > TW_LABEL_VALUE_MAX)
        return false;
    if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

bool tw_label_value_valid(const char *v)
{
    return v != NULL && name_valid(v, strlen(v));
}

bool tw_label_key_valid(const char *k)
{
    if (k == NULL)
        return false;
    const char *slash = strchr(k, '/');
    if (slash == NULL)
        return name_valid(k, strlen(k));
    if (strchr(slash + 1, '/') != NULL)
        return false;
    return tw_dns_subdomain_valid_n(k, (size_t)(slash - k)) &&
           name_valid(slash + 1, strlen(slash + 1));
}

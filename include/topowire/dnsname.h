/* dnsname.h - RFC 1123 DNS labels and subdomains, as Kubernetes names them. */
#ifndef TOPOWIRE_DNSNAME_H
#define TOPOWIRE_DNSNAME_H

#include <stdbool.h>
#include <stddef.h>

/* Longest DNS label and longest subdomain, without the terminator. */
#define TW_DNS_LABEL_MAX     63
#define TW_DNS_SUBDOMAIN_MAX 253

/*
 * True when s is an RFC 1123 label as Kubernetes requires of a namespace or
 * a Service name: 1 to 63 characters of [a-z0-9-], beginning and ending with
 * a letter or digit. Upper case is refused. NULL is false. Cannot fail.
 */
bool tw_dns_label_valid(const char *s);

/*
 * True when s is an RFC 1123 subdomain, what Kubernetes requires of a node,
 * Secret or webhook configuration name and of a label key's prefix: at most
 * 253 characters of dot-separated labels as tw_dns_label_valid() checks
 * them, so no empty label ("a..b", ".a", "a.") and no label that begins or
 * ends with '-' ("a.-b"). NULL is false. Cannot fail.
 */
bool tw_dns_subdomain_valid(const char *s);

/* tw_dns_subdomain_valid() of the n bytes at s (which need not be NUL-terminated). */
bool tw_dns_subdomain_valid_n(const char *s, size_t n);

#endif

/* test_regcheck.c: the registry check before image pulls (regcheck.c,
 * netaddr.c): the host of a registry index name, the verdict on what it
 * resolves to, the whole check through uv_getaddrinfo on a real loop
 * (literal addresses, numeric spellings, localhost, names that do not
 * resolve), and a cancel. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "err.h"
#include "log.h"
#include "netaddr.h"
#include "regcheck.h"
#include "test.h"

/* --- the host of a registry -------------------------------------------------- */

static const char *host_of(const char *registry, char *out, size_t size)
{
    drv_err e;
    if (regcheck_host(registry, out, size, &e) < 0) {
        return NULL;
    }
    return out;
}

#define HOST_EQ(reg, want) do {                                         \
        char h_[300];                                                   \
        const char *g_ = host_of((reg), h_, sizeof h_);                 \
        const char *w_ = (want);                                        \
        if (w_ == NULL) { ASSERT(g_ == NULL); }                         \
        else { ASSERT(g_ != NULL); ASSERT_STR_EQ(g_, w_); }             \
    } while (0)

TEST(host_of_a_registry)
{
    HOST_EQ("127.0.0.1:5000", "127.0.0.1");
    HOST_EQ("127.0.0.1", "127.0.0.1");
    HOST_EQ("localhost:5000", "localhost");
    HOST_EQ("registry.example.com", "registry.example.com");
    HOST_EQ("2130706433:8080", "2130706433");
    HOST_EQ("[::1]:5000", "::1");
    HOST_EQ("[::1]", "::1");
    HOST_EQ("[fe80::1%eth0]:5000", "fe80::1%eth0");
    HOST_EQ("fe80::1", "fe80::1");          /* no brackets: all of it */
    HOST_EQ("", NULL);
    HOST_EQ(NULL, NULL);
    HOST_EQ(":5000", NULL);
    HOST_EQ("[]:5000", NULL);
    HOST_EQ("[::1", NULL);
    HOST_EQ("[::1]x", NULL);
    char long_host[300];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    HOST_EQ(long_host, NULL);

    drv_err e;
    char h[64];
    ASSERT_INT_EQ(DRV_EINVALID, regcheck_host("[::1", h, sizeof h, &e));
    ASSERT_STR_EQ("image registry has no host: \"[::1\"", e.msg);
    /* a control byte in a message is escaped */
    ASSERT_INT_EQ(DRV_EINVALID, regcheck_host("[\x1b[2J", h, sizeof h, &e));
    ASSERT(strchr(e.msg, '\x1b') == NULL);
}

/* --- the verdict on an address list ----------------------------------------- */

TEST(any_refused_address_refuses_the_registry)
{
    struct sockaddr_in pub, lo;
    struct sockaddr_in6 pub6;
    memset(&pub, 0, sizeof pub);
    memset(&lo, 0, sizeof lo);
    memset(&pub6, 0, sizeof pub6);
    pub.sin_family = AF_INET;
    inet_pton(AF_INET, "8.8.8.8", &pub.sin_addr);
    lo.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.53", &lo.sin_addr);
    pub6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2606:4700::1", &pub6.sin6_addr);
    struct addrinfo a3 = { .ai_family = AF_INET, .ai_addr = (struct sockaddr *)&lo,
                           .ai_addrlen = sizeof lo };
    struct addrinfo a2 = { .ai_family = AF_INET6, .ai_addr = (struct sockaddr *)&pub6,
                           .ai_addrlen = sizeof pub6, .ai_next = &a3 };
    struct addrinfo a1 = { .ai_family = AF_INET, .ai_addr = (struct sockaddr *)&pub,
                           .ai_addrlen = sizeof pub, .ai_next = &a2 };
    drv_err e;
    drv_err_clear(&e);
    /* public, public, then loopback: the last one decides */
    ASSERT_INT_EQ(DRV_EDENIED, regcheck_verdict("reg.example:5000", "reg.example", &a1, &e));
    ASSERT_STR_EQ("image registry \"reg.example:5000\" resolves to 127.0.0.53, a loopback "
                  "address: pulls from private registries are off (allow_private_registries "
                  "= true in the docker plugin config allows them)", e.msg);
    /* only public addresses: fine */
    a2.ai_next = NULL;
    ASSERT_INT_EQ(0, regcheck_verdict("reg.example:5000", "reg.example", &a1, &e));
    /* nothing at all: nothing refused */
    ASSERT_INT_EQ(0, regcheck_verdict("reg.example", "reg.example", NULL, &e));
}

/* --- the whole check on a loop ------------------------------------------------ */

typedef struct {
    int calls;
    int rc;
    drv_err err;
} result;

static void on_checked(void *ud, int rc, const drv_err *err)
{
    result *r = ud;
    r->calls++;
    r->rc = rc;
    if (err != NULL) {
        r->err = *err;
    }
}

/* Runs one check to its end: the start's code (0 checked, 1 skipped, < 0
 * refused at once) in *started, the callback's in r. */
static void check(const char *registry, int *started, result *r)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    memset(r, 0, sizeof *r);
    r->rc = 99;
    regcheck *rq = NULL;
    *started = regcheck_start(&loop, registry, on_checked, r, &rq, &r->err);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

#define OFF " address: pulls from private registries are off " \
    "(allow_private_registries = true in the docker plugin config allows them)"

#define REFUSED(reg, want) do {                                          \
        int s_;                                                         \
        result r_;                                                      \
        check((reg), &s_, &r_);                                         \
        ASSERT_INT_EQ(0, s_);                                           \
        ASSERT_INT_EQ(1, r_.calls);                                     \
        ASSERT_INT_EQ(DRV_EDENIED, r_.rc);                              \
        ASSERT_STR_EQ((want), r_.err.msg);                              \
    } while (0)

#define PASSES(reg) do {                                                \
        int s_;                                                         \
        result r_;                                                      \
        check((reg), &s_, &r_);                                         \
        ASSERT_INT_EQ(0, s_);                                           \
        ASSERT_INT_EQ(1, r_.calls);                                     \
        ASSERT_INT_EQ(0, r_.rc);                                        \
    } while (0)

TEST(literal_addresses_are_classified_exactly)
{
    REFUSED("127.0.0.1:8080", "image registry \"127.0.0.1:8080\" is a loopback" OFF);
    REFUSED("127.9.9.9", "image registry \"127.9.9.9\" is a loopback" OFF);
    REFUSED("[::1]:5000", "image registry \"[::1]:5000\" is a loopback" OFF);
    REFUSED("[::ffff:127.0.0.1]:5000", "image registry \"[::ffff:127.0.0.1]:5000\" is a loopback" OFF);
    REFUSED("[64:ff9b::a9fe:a9fe]", "image registry \"[64:ff9b::a9fe:a9fe]\" is a link-local" OFF);
    REFUSED("10.1.2.3:5000", "image registry \"10.1.2.3:5000\" is a private" OFF);
    REFUSED("172.16.0.1", "image registry \"172.16.0.1\" is a private" OFF);
    REFUSED("192.168.1.1:443", "image registry \"192.168.1.1:443\" is a private" OFF);
    REFUSED("[fd00::1]:5000", "image registry \"[fd00::1]:5000\" is a private" OFF);
    REFUSED("169.254.169.254", "image registry \"169.254.169.254\" is a link-local" OFF);
    REFUSED("[fe80::1]:5000", "image registry \"[fe80::1]:5000\" is a link-local" OFF);
    REFUSED("100.64.0.1:5000", "image registry \"100.64.0.1:5000\" is a shared (CGNAT)" OFF);
    REFUSED("0.0.0.0:5000", "image registry \"0.0.0.0:5000\" is an unspecified" OFF);
    REFUSED("[::]:5000", "image registry \"[::]:5000\" is an unspecified" OFF);
    REFUSED("224.0.0.1", "image registry \"224.0.0.1\" is a multicast" OFF);
    REFUSED("[ff02::1]", "image registry \"[ff02::1]\" is a multicast" OFF);
    REFUSED("255.255.255.255", "image registry \"255.255.255.255\" is a reserved" OFF);
    REFUSED("192.0.0.8", "image registry \"192.0.0.8\" is a reserved" OFF);
    /* public addresses pass; so do the documentation ranges (TEST-NET-1/2/3,
     * 2001:db8::/32) and benchmarking (198.18/15): not routed, but no host
     * service either (netaddr.h) */
    PASSES("8.8.8.8:443");
    PASSES("172.32.0.1");
    PASSES("100.128.0.1");
    PASSES("[2606:4700::1111]:5000");
    PASSES("192.0.2.10:5000");
    PASSES("198.51.100.7");
    PASSES("203.0.113.1");
    PASSES("198.18.0.1");
    PASSES("[2001:db8::1]");
}

/* getaddrinfo reads numeric hosts as inet_aton does: what dockerd's
 * resolver makes of them is 127.0.0.1, so these are loopback too */
TEST(numeric_spellings_are_what_inet_aton_makes_of_them)
{
    REFUSED("2130706433:8080", "image registry \"2130706433:8080\" resolves to 127.0.0.1, a loopback" OFF);
    REFUSED("0x7f000001", "image registry \"0x7f000001\" resolves to 127.0.0.1, a loopback" OFF);
    REFUSED("0x7f.1", "image registry \"0x7f.1\" resolves to 127.0.0.1, a loopback" OFF);
    REFUSED("127.1:5000", "image registry \"127.1:5000\" resolves to 127.0.0.1, a loopback" OFF);
    REFUSED("017700000001", "image registry \"017700000001\" resolves to 127.0.0.1, a loopback" OFF);
    REFUSED("0177.0.0.1", "image registry \"0177.0.0.1\" resolves to 127.0.0.1, a loopback" OFF);
    REFUSED("0", "image registry \"0\" resolves to 0.0.0.0, an unspecified" OFF);
    REFUSED("10.1", "image registry \"10.1\" resolves to 10.0.0.1, a private" OFF);
    REFUSED("0xa9fea9fe", "image registry \"0xa9fea9fe\" resolves to 169.254.169.254, a link-local" OFF);
    /* 134744072 is 8.8.8.8 */
    PASSES("134744072:5000");
}

TEST(localhost_is_loopback)
{
    int s;
    result r;
    check("localhost:5000", &s, &r);
    ASSERT_INT_EQ(0, s);
    ASSERT_INT_EQ(1, r.calls);
    ASSERT_INT_EQ(DRV_EDENIED, r.rc);
    ASSERT_CONTAINS(r.err.msg, "image registry \"localhost:5000\" resolves to ");
    ASSERT_CONTAINS(r.err.msg, ", a loopback" OFF);
}

TEST(docker_hub_needs_no_lookup_and_an_unresolvable_name_passes)
{
    int s;
    result r;
    check("docker.io", &s, &r);
    ASSERT_INT_EQ(1, s);
    ASSERT_INT_EQ(0, r.calls);
    /* a name that does not resolve passes (dockerd reports the failure);
     * a 64-byte label fails in the resolver itself, so the test sends no
     * DNS query (the tests keep their traffic on loopback) */
    PASSES("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.invalid:5000");
}

TEST(a_registry_with_no_host_is_refused_at_once)
{
    int s;
    result r;
    check("[::1", &s, &r);
    ASSERT_INT_EQ(DRV_EDENIED, s);
    ASSERT_INT_EQ(0, r.calls);
    ASSERT_STR_EQ("image registry has no host: \"[::1\"", r.err.msg);
    check("", &s, &r);
    ASSERT_INT_EQ(DRV_EDENIED, s);
    ASSERT_INT_EQ(0, r.calls);
}

TEST(a_cancelled_check_never_calls_back)
{
    for (int i = 0; i < 20; i++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        result r;
        memset(&r, 0, sizeof r);
        regcheck *rq = NULL;
        drv_err e;
        ASSERT_INT_EQ(0, regcheck_start(&loop, i % 2 ? "127.0.0.1:5000" : "localhost", on_checked,
                                        &r, &rq, &e));
        ASSERT(rq != NULL);
        regcheck_cancel(rq);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_INT_EQ(0, uv_loop_close(&loop));
        ASSERT_INT_EQ(0, r.calls);
    }
}

/* --- the shared classifier (netaddr.c) keeps the artifact fetcher's ---------- */

static const char *cls(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &in6->sin6_addr);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &in->sin_addr);
    }
    return netaddr_class((struct sockaddr *)&ss);
}

TEST(netaddr_classes_and_strings)
{
    ASSERT_STR_EQ("loopback", cls("127.0.0.1"));
    ASSERT_STR_EQ("private", cls("10.0.0.1"));
    ASSERT_STR_EQ("loopback", cls("::ffff:127.0.0.1"));
    ASSERT(cls("192.0.2.1") == NULL);
    ASSERT(cls("1.1.1.1") == NULL);
    ASSERT_STR_EQ("unspecified", netaddr_class(NULL));
    struct sockaddr_un_like { sa_family_t fam; char pad[14]; } other;
    memset(&other, 0, sizeof other);
    other.fam = AF_UNIX;
    ASSERT_STR_EQ("reserved", netaddr_class((struct sockaddr *)&other));

    char out[INET6_ADDRSTRLEN];
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
    ASSERT_STR_EQ("fe80::1", netaddr_str((struct sockaddr *)&in6, out, sizeof out));
    ASSERT_STR_EQ("?", netaddr_str((struct sockaddr *)&other, out, sizeof out));
    ASSERT_STR_EQ("?", netaddr_str((struct sockaddr *)&in6, out, 4));   /* too small */
}

int main(void)
{
    log_set_level(LOG_ERROR);
    RUN(host_of_a_registry);
    RUN(any_refused_address_refuses_the_registry);
    RUN(literal_addresses_are_classified_exactly);
    RUN(numeric_spellings_are_what_inet_aton_makes_of_them);
    RUN(localhost_is_loopback);
    RUN(docker_hub_needs_no_lookup_and_an_unresolvable_name_passes);
    RUN(a_registry_with_no_host_is_refused_at_once);
    RUN(a_cancelled_check_never_calls_back);
    RUN(netaddr_classes_and_strings);
    return test_summary();
}

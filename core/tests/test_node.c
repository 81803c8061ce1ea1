/* test_node.c: host facts as Nomad node attributes. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "node.h"
#include "test.h"

static long long num(const node_facts *f, const char *name)
{
    const char *v = node_facts_get(f, name);
    char *end = NULL;
    if (v == NULL || *v == '\0') {
        return -1;
    }
    long long n = strtoll(v, &end, 10);
    return *end == '\0' ? n : -1;
}

static int is_ipv4(const char *s)
{
    struct in_addr a;
    return s != NULL && inet_pton(AF_INET, s, &a) == 1;
}

/* 1 if some local interface holds the IPv4 address `s`. */
static int is_local_ipv4(const char *s)
{
    struct ifaddrs *all = NULL, *a;
    struct in_addr want;
    int found = 0;
    if (s == NULL || inet_pton(AF_INET, s, &want) != 1 || getifaddrs(&all) < 0) {
        return 0;
    }
    for (a = all; a != NULL && !found; a = a->ifa_next) {
        if (a->ifa_addr != NULL && a->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)a->ifa_addr;
            found = sin->sin_addr.s_addr == want.s_addr;
        }
    }
    freeifaddrs(all);
    return found;
}

TEST(kernel_name_is_linux)
{
    node_facts f;
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    int same = node_facts_get(&f, "kernel.name") != NULL &&
               strcmp(node_facts_get(&f, "kernel.name"), "linux") == 0;
    node_facts_free(&f);
    ASSERT(same);
}

TEST(kernel_version_is_uname_release)
{
    node_facts f;
    struct utsname u;
    ASSERT_INT_EQ(uname(&u), 0);
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    int same = node_facts_get(&f, "kernel.version") != NULL &&
               strcmp(node_facts_get(&f, "kernel.version"), u.release) == 0;
    node_facts_free(&f);
    ASSERT(same);
}

TEST(cpu_cores_match_online_cpus)
{
    node_facts f;
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    long long cores = num(&f, "cpu.numcores");
    node_facts_free(&f);
    ASSERT(cores >= 1);
    ASSERT_INT_EQ(cores, sysconf(_SC_NPROCESSORS_ONLN));
}

TEST(total_compute_is_frequency_times_cores)
{
    node_facts f;
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    long long mhz = num(&f, "cpu.frequency");
    long long cores = num(&f, "cpu.numcores");
    long long total = num(&f, "cpu.totalcompute");
    int has_freq = node_facts_get(&f, "cpu.frequency") != NULL;
    node_facts_free(&f);
    if (!has_freq) {
        return;    /* no frequency on this host (some VMs): both left out */
    }
    ASSERT(mhz > 0);
    ASSERT_INT_EQ(total, mhz * cores);
}

TEST(memory_total_is_positive_and_whole_kib)
{
    node_facts f;
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    long long mem = num(&f, "memory.totalbytes");
    node_facts_free(&f);
    ASSERT(mem > 0);
    ASSERT_INT_EQ(mem % 1024, 0);
}

TEST(arch_uses_go_names)
{
    ASSERT_STR_EQ(node_arch("x86_64"), "amd64");
    ASSERT_STR_EQ(node_arch("aarch64"), "arm64");
    ASSERT_STR_EQ(node_arch("i686"), "386");
    ASSERT_STR_EQ(node_arch("armv7l"), "arm");
    ASSERT_STR_EQ(node_arch("weird9"), "weird9");
}

TEST(hostname_matches_gethostname)
{
    node_facts f;
    char host[256];
    ASSERT_INT_EQ(gethostname(host, sizeof host), 0);
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    int same = node_facts_get(&f, "unique.hostname") != NULL &&
               strcmp(node_facts_get(&f, "unique.hostname"), host) == 0;
    node_facts_free(&f);
    ASSERT(same);
}

TEST(node_address_is_ipv4_and_an_attribute)
{
    node_facts f;
    ASSERT_INT_EQ(node_facts_gather(&f, NULL, NULL), 0);
    int ok = is_ipv4(f.network_ip);
    int local = is_local_ipv4(f.network_ip);
    const char *attr = node_facts_get(&f, "unique.network.ip-address");
    int same = attr != NULL && f.network_ip != NULL && strcmp(attr, f.network_ip) == 0;
    node_facts_free(&f);
    ASSERT(ok);
    ASSERT(local);          /* an address of this host, ports can bind to it */
    ASSERT(same);
}

TEST(loopback_interface_gives_127_0_0_1)
{
    node_facts f;
    drv_err err;
    ASSERT_INT_EQ(node_facts_gather(&f, "lo", &err), 0);
    int same = f.network_ip != NULL && strcmp(f.network_ip, "127.0.0.1") == 0;
    node_facts_free(&f);
    ASSERT(same);
}

TEST(unknown_interface_is_a_config_error)
{
    node_facts f;
    drv_err err;
    drv_err_clear(&err);
    ASSERT_INT_EQ(node_facts_gather(&f, "eth9", &err), DRV_ECONFIG);
    ASSERT_STR_EQ(err.msg, "agent config: network_interface \"eth9\" not found");
    ASSERT_INT_EQ(f.n, 0);
}

TEST(set_replaces_and_unset_removes)
{
    node_facts f;
    memset(&f, 0, sizeof f);
    node_facts_set(&f, "b", "1");
    node_facts_set(&f, "a", "2");
    node_facts_set(&f, "b", "3");
    ASSERT_INT_EQ(f.n, 2);
    ASSERT_STR_EQ(node_facts_get(&f, "b"), "3");
    node_facts_sort(&f);
    ASSERT_STR_EQ(f.v[0].name, "a");
    node_facts_unset(&f, "a");
    ASSERT(node_facts_get(&f, "a") == NULL);
    ASSERT_INT_EQ(f.n, 1);
    node_facts_free(&f);
    ASSERT_INT_EQ(f.n, 0);
}

int main(void)
{
    RUN(kernel_name_is_linux);
    RUN(kernel_version_is_uname_release);
    RUN(cpu_cores_match_online_cpus);
    RUN(total_compute_is_frequency_times_cores);
    RUN(memory_total_is_positive_and_whole_kib);
    RUN(arch_uses_go_names);
    RUN(hostname_matches_gethostname);
    RUN(node_address_is_ipv4_and_an_attribute);
    RUN(loopback_interface_gives_127_0_0_1);
    RUN(unknown_interface_is_a_config_error);
    RUN(set_replaces_and_unset_removes);
    return test_summary();
}

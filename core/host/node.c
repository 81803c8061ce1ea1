/* node.c: host facts as Nomad node attributes (see node.h). */
#include "node.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "buf.h"

static ssize_t find(const node_facts *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->v[i].name, name) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

void node_facts_set(node_facts *f, const char *name, const char *value)
{
    ssize_t i = find(f, name);
    if (i >= 0) {
        free(f->v[i].value);
        f->v[i].value = drv_xstrdup(value);
        return;
    }
    node_attr *nv = realloc(f->v, (f->n + 1) * sizeof *nv);
    if (nv == NULL) {
        abort();
    }
    f->v = nv;
    f->v[f->n].name = drv_xstrdup(name);
    f->v[f->n].value = drv_xstrdup(value);
    f->n++;
}

void node_facts_unset(node_facts *f, const char *name)
{
    ssize_t i = find(f, name);
    if (i < 0) {
        return;
    }
    free(f->v[i].name);
    free(f->v[i].value);
    memmove(&f->v[i], &f->v[i + 1], (f->n - (size_t)i - 1) * sizeof *f->v);
    f->n--;
}

const char *node_facts_get(const node_facts *f, const char *name)
{
    ssize_t i = find(f, name);
    return i >= 0 ? f->v[i].value : NULL;
}

static int cmp_attr(const void *a, const void *b)
{
    return strcmp(((const node_attr *)a)->name, ((const node_attr *)b)->name);
}

void node_facts_sort(node_facts *f)
{
    if (f->n > 1) {
        qsort(f->v, f->n, sizeof *f->v, cmp_attr);
    }
}

void node_facts_free(node_facts *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].name);
        free(f->v[i].value);
    }
    free(f->v);
    free(f->network_ip);
    memset(f, 0, sizeof *f);
}

const char *node_arch(const char *machine)
{
    static const char *const map[][2] = {
        { "x86_64", "amd64" }, { "amd64", "amd64" }, { "aarch64", "arm64" },
        { "arm64", "arm64" }, { "i386", "386" }, { "i486", "386" }, { "i586", "386" },
        { "i686", "386" }, { "armv6l", "arm" }, { "armv7l", "arm" }, { "armv8l", "arm" },
        { "ppc64le", "ppc64le" }, { "ppc64", "ppc64" }, { "s390x", "s390x" },
        { "riscv64", "riscv64" }, { "mips64", "mips64" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(machine, map[i][0]) == 0) {
            return map[i][1];
        }
    }
    return machine;
}

/* --- small file readers --------------------------------------------------- */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    size_t k = 0;
    while (isspace((unsigned char)s[k])) {
        k++;
    }
    memmove(s, s + k, n - k + 1);
}

/* Value of "KEY<sep>value" lines (first match), trimmed, into out. */
static int read_keyed(const char *path, const char *key, char sep, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t klen = strlen(key);
    int found = 0;

    if (f == NULL) {
        return 0;
    }
    while (!found && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) != 0) {
            continue;
        }
        char *p = line + klen;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p != sep) {
            continue;
        }
        p++;
        trim(p);
        snprintf(out, len, "%s", p);
        found = 1;
    }
    fclose(f);
    return found;
}

/* os-release values may be quoted: ID="debian" or ID=debian. */
static int read_os_release(const char *key, char *out, size_t len)
{
    if (!read_keyed("/etc/os-release", key, '=', out, len) &&
        !read_keyed("/usr/lib/os-release", key, '=', out, len)) {
        return 0;
    }
    size_t n = strlen(out);
    if (n >= 2 && (out[0] == '"' || out[0] == '\'') && out[n - 1] == out[0]) {
        memmove(out, out + 1, n - 2);
        out[n - 2] = '\0';
    }
    return out[0] != '\0';
}

static long long read_ll(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (f != NULL) {
        if (fscanf(f, "%lld", &v) != 1) {
            v = -1;
        }
        fclose(f);
    }
    return v;
}

/* CPU frequency in MHz: /proc/cpuinfo "cpu MHz", else cpufreq max (kHz). */
static long cpu_mhz(void)
{
    char v[64];
    if (read_keyed("/proc/cpuinfo", "cpu MHz", ':', v, sizeof v)) {
        double mhz = strtod(v, NULL);
        if (mhz >= 1.0) {
            return (long)mhz;
        }
    }
    long long khz = read_ll("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    return khz > 0 ? (long)(khz / 1000) : 0;
}

static long long mem_total_bytes(void)
{
    char v[64];
    if (!read_keyed("/proc/meminfo", "MemTotal", ':', v, sizeof v)) {
        return 0;
    }
    return strtoll(v, NULL, 10) * 1024;   /* "16314424 kB" */
}

/* --- node address --------------------------------------------------------- */

/* First IPv4 address of `ifname` into out; 1 found, 0 no IPv4, -1 no such interface. */
static int iface_ipv4(const char *ifname, char *out, size_t len)
{
    struct ifaddrs *all = NULL;
    int exists = 0, found = 0;

    if (getifaddrs(&all) < 0) {
        return -1;
    }
    for (struct ifaddrs *a = all; a != NULL && !found; a = a->ifa_next) {
        if (a->ifa_name == NULL || strcmp(a->ifa_name, ifname) != 0) {
            continue;
        }
        exists = 1;
        if (a->ifa_addr != NULL && a->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)a->ifa_addr;
            found = inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)len) != NULL;
        }
    }
    freeifaddrs(all);
    if (!exists && if_nametoindex(ifname) != 0) {
        exists = 1;    /* interface without any address */
    }
    return found ? 1 : (exists ? 0 : -1);
}

/* Interface of the default route (/proc/net/route destination 00000000,
 * lowest metric), or 0 if there is none. */
static int default_route_iface(char *out, size_t len)
{
    FILE *f = fopen("/proc/net/route", "r");
    char line[512];
    long best_metric = LONG_MAX;
    int found = 0;

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char iface[IF_NAMESIZE + 1];
        unsigned long dest, gw, flags, refcnt, use, metric, mask;
        if (sscanf(line, "%16s %lx %lx %lx %lu %lu %lu %lx", iface, &dest, &gw, &flags, &refcnt,
                   &use, &metric, &mask) != 8) {
            continue;    /* header line */
        }
        if (dest != 0 || mask != 0 || (flags & 0x1) == 0 || (long)metric >= best_metric) {
            continue;    /* not a default route, or not up (RTF_UP) */
        }
        best_metric = (long)metric;
        snprintf(out, len, "%s", iface);
        found = 1;
    }
    fclose(f);
    return found;
}

int node_network_ip(const char *network_interface, char *out, size_t len, drv_err *err)
{
    char iface[IF_NAMESIZE + 1];

    if (network_interface != NULL && network_interface[0] != '\0') {
        int r = iface_ipv4(network_interface, out, len);
        if (r < 0) {
            return drv_err_set(err, DRV_ECONFIG, "agent config: network_interface \"%s\" not found",
                               network_interface);
        }
        if (r == 0) {
            return drv_err_set(err, DRV_ECONFIG,
                               "agent config: network_interface \"%s\" has no IPv4 address",
                               network_interface);
        }
        return 0;
    }
    if (default_route_iface(iface, sizeof iface) && iface_ipv4(iface, out, len) == 1) {
        return 0;
    }
    snprintf(out, len, "127.0.0.1");
    return 0;
}

/* --- gathering ------------------------------------------------------------ */

static void set_ll(node_facts *f, const char *name, long long v)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    node_facts_set(f, name, s);
}

int node_facts_gather(node_facts *out, const char *network_interface, drv_err *err)
{
    char ip[INET_ADDRSTRLEN], v[256], host[HOST_NAME_MAX + 1];
    struct utsname u;

    memset(out, 0, sizeof *out);
    int rc = node_network_ip(network_interface, ip, sizeof ip, err);
    if (rc < 0) {
        return rc;
    }
    out->network_ip = drv_xstrdup(ip);

    if (uname(&u) == 0) {
        for (char *p = u.sysname; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        node_facts_set(out, "kernel.name", u.sysname);
        node_facts_set(out, "kernel.version", u.release);
        node_facts_set(out, "cpu.arch", node_arch(u.machine));
    }
    if (read_os_release("ID", v, sizeof v)) {
        node_facts_set(out, "os.name", v);
    }
    if (read_os_release("VERSION_ID", v, sizeof v)) {
        node_facts_set(out, "os.version", v);
    }
    if (read_keyed("/proc/cpuinfo", "model name", ':', v, sizeof v) && v[0] != '\0') {
        node_facts_set(out, "cpu.modelname", v);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) {
        cores = 1;
    }
    set_ll(out, "cpu.numcores", cores);
    long mhz = cpu_mhz();
    if (mhz > 0) {
        set_ll(out, "cpu.frequency", mhz);
        set_ll(out, "cpu.totalcompute", (long long)mhz * cores);
    }
    long long mem = mem_total_bytes();
    if (mem > 0) {
        set_ll(out, "memory.totalbytes", mem);
    }
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        node_facts_set(out, "unique.hostname", host);
    }
    node_facts_set(out, "unique.network.ip-address", ip);
    return 0;
}

/* Behaviours busybox cannot perform, run inside the kernel-matrix VMs (built
 * static by build-initramfs.sh). Each subcommand makes the syscalls a rule
 * looks for; failures of the syscalls themselves are fine (the event is what
 * counts) and are printed for the log. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int ptrace_attach(void)
{
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	usleep(100000);
	long r = ptrace(PTRACE_ATTACH, child, 0, 0);
	printf("ptrace attach %d: %ld %s\n", child, r, r ? strerror(errno) : "");
	if (r == 0) {
		waitpid(child, NULL, 0);
		ptrace(PTRACE_DETACH, child, 0, 0);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}

/* Copies this binary into a memfd and executes it from there ("true"). */
static int memfd_exec(char **envp)
{
	int fd = syscall(SYS_memfd_create, "payload", 0);
	int src = open("/proc/self/exe", O_RDONLY);
	if (fd < 0 || src < 0) {
		perror("memfd");
		return 1;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (write(fd, buf, n) != n)
			return 1;
	char *argv[] = {"payload", "true", NULL};
	syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
	/* Some kernels (5.10 here) answer ENOENT; the /proc path is what most
	 * droppers use anyway, and the executable is the same memfd. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	execve(path, argv, envp);
	perror("execve");
	return 1;
}

static int module_load(void)
{
	int fd = open("/dev/null", O_RDONLY);
	long r1 = syscall(SYS_finit_module, fd, "", 0);
	int e1 = errno;
	long r2 = syscall(SYS_init_module, NULL, 0, "");
	int e2 = errno;
	printf("finit_module: %ld %s; init_module: %ld %s\n", r1, strerror(e1), r2, strerror(e2));
	return 0;
}

static int enter_ns(void)
{
	int fd = open("/proc/1/ns/uts", O_RDONLY);
	long r = setns(fd, CLONE_NEWUTS);
	printf("setns: %ld %s\n", r, r ? strerror(errno) : "");
	return 0;
}

static int tcp_connect(const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	long r = connect(s, (struct sockaddr *)&a, sizeof(a));
	printf("connect %s:%d: %ld %s\n", ip, port, r, r ? strerror(errno) : "");
	close(s);
	return 0;
}

int main(int argc, char **argv, char **envp)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "true"))
		return 0;
	if (!strcmp(cmd, "ptrace"))
		return ptrace_attach();
	if (!strcmp(cmd, "memfd-exec"))
		return memfd_exec(envp);
	if (!strcmp(cmd, "module"))
		return module_load();
	if (!strcmp(cmd, "setns"))
		return enter_ns();
	if (!strcmp(cmd, "connect") && argc > 3)
		return tcp_connect(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: behave true|ptrace|memfd-exec|module|setns|connect IP PORT\n");
	return 2;
}

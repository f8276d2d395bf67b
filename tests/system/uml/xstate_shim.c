/* LD_PRELOAD library for linux.uml (User-Mode-Linux 6.1) on hosts whose XSAVE area is
 * larger than UML's fixed buffer (Intel Xeon with AMX: ~11 KiB of tile state).
 *
 * UML saves and restores its processes' FPU state with
 *   ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, pid, NT_X86_XSTATE, {buf, UML's size}).
 * The host kernel truncates a short GETREGSET, but refuses a SETREGSET whose length is not
 * the full host XSAVE size with EFAULT; UML then panics at boot ("ptrace set fp regs
 * failed, errno = 14"). This library wraps ptrace() for those two requests only:
 *   GET: read the full host-size state, hand UML the prefix of the length it asked for;
 *   SET: read the full current state, overlay UML's prefix, write the full buffer back.
 * When UML's buffer is already large enough (AMD EPYC and other hosts without AMX), both
 * requests pass straight through, so the same UML boot path runs on every machine.
 * Every other ptrace request goes to the C library unchanged.
 *
 * UML may call ptrace from signal context (its interrupts are host signals), so no
 * malloc: a few static buffers, one per nesting level. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

enum { kBufSize = 64 * 1024, kLevels = 4 };
static unsigned char buffers[kLevels][kBufSize] __attribute__((aligned(64)));
static volatile int depth;

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

static long raw_ptrace(long request, pid_t pid, void *addr, void *data) {
  return syscall(SYS_ptrace, request, pid, addr, data);
}

static long xstate(long request, pid_t pid, struct iovec *uml) {
  int level = __atomic_fetch_add(&depth, 1, __ATOMIC_SEQ_CST);
  long rc;
  if (level >= kLevels) { /* cannot happen with UML's nesting; fail like the kernel would */
    errno = ENOMEM;
    rc = -1;
    goto out;
  }
  struct iovec full = {buffers[level], kBufSize};
  rc = raw_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &full);
  if (rc < 0) goto out;
  /* full.iov_len is now the host's XSAVE size. */
  if (request == PTRACE_GETREGSET) {
    size_t n = uml->iov_len < full.iov_len ? uml->iov_len : full.iov_len;
    memcpy(uml->iov_base, full.iov_base, n);
    uml->iov_len = n;
    rc = 0;
  } else if (uml->iov_len >= full.iov_len) {
    rc = raw_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, uml);
  } else {
    memcpy(full.iov_base, uml->iov_base, uml->iov_len);
    rc = raw_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &full);
  }
out:
  __atomic_fetch_sub(&depth, 1, __ATOMIC_SEQ_CST);
  return rc;
}

long ptrace(enum __ptrace_request request, ...) {
  va_list ap;
  va_start(ap, request);
  pid_t pid = va_arg(ap, pid_t);
  void *addr = va_arg(ap, void *);
  void *data = va_arg(ap, void *);
  va_end(ap);
  if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
      (unsigned long)addr == NT_X86_XSTATE && data != NULL)
    return xstate(request, pid, (struct iovec *)data);
  static ptrace_fn real;
  if (real == NULL) real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
  return real(request, pid, addr, data);
}

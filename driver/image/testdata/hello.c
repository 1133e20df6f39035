/* The fixture's whole program: write a line, exit 0. No libc, so the
   binary is a few kilobytes and static. x86-64 Linux system calls. */
static const char msg[] = "hello from a docker save fixture\n";
void _start(void) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(1), "D"(1), "S"(msg), "d"(sizeof msg - 1) : "rcx", "r11", "memory");
	__asm__ volatile("syscall" : : "a"(60), "D"(0) : "rcx", "r11", "memory");
	for (;;) {}
}

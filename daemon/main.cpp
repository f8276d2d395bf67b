#include <cstdio>
int main() { std::puts("ipop-ipsecd"); return 0; }

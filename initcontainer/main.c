/* main.c - topowire-init (placeholder until the resolver lands). */
#include "topowire/version.h"
#include <stdio.h>

int main(void)
{
    puts("topowire-init " TW_VERSION);
    return 0;
}

// Planted bug (timing trick): returns at once and lets a detached thread do the work later.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

struct job { int64_t n; float a; const float *x, *y; float *out; };

static void *work(void *p) {
    struct job *j = p;
    for (int64_t i = 0; i < j->n; i++) j->out[i] = j->a * j->x[i] + j->y[i];
    free(j);
    return NULL;
}

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    struct job *j = malloc(sizeof *j);
    if (!j) return;
    *j = (struct job){n, a, x, y, out};
    pthread_t t;
    if (pthread_create(&t, NULL, work, j) == 0) pthread_detach(t);
}

/* Runs the task ids 0..n-1 of a kernel on n threads.
 *
 * Built with OpenMP (the default where the compiler has it), the threads are OpenMP's. torch's CPU wheels load
 * their own libgomp.so.1, which the dynamic linker then also gives this library (same soname): the kernels run on
 * torch's threads. A second set of threads is a trap: after each torch op its OpenMP threads spin, waiting for
 * more work, on the cores our threads need, which made a 2-thread product twice as slow whenever it followed a
 * torch op (every layer of a model does).
 *
 * Without OpenMP, a persistent pthread pool of our own. */
#include "hfb.h"

#if defined(_OPENMP)

#include <omp.h>
#include <pthread.h>

/* GNU OpenMP hangs in a forked child (a DataLoader worker, say) of a process that ran a parallel region: there the
 * kernels run on the calling thread. */
static int forked;

static void mark_forked(void) { forked = 1; }

/* At load time: torch may have run parallel regions before our first call. */
__attribute__((constructor)) static void register_atfork(void) { pthread_atfork(NULL, NULL, mark_forked); }

void hfb_parallel(hfb_task fn, void *ctx, int n) {
    if (n <= 1 || forked) {
        for (int tid = 0; tid < n; tid++) fn(ctx, tid);
        return;
    }
#pragma omp parallel for num_threads(n) schedule(static, 1)
    for (int tid = 0; tid < n; tid++) fn(ctx, tid);
}

#elif defined(_WIN32)

void hfb_parallel(hfb_task fn, void *ctx, int n) {
    for (int tid = 0; tid < n; tid++) fn(ctx, tid);
}

#else

#include <pthread.h>

#define MAX_WORKERS 255
/* Polls of a shared counter before blocking on a condition variable, about 50 us: waking a blocked thread took
 * 20-100 us on the test VM, more than a whole 1024 x 1024 product, while layers of a model follow each other
 * faster than that. */
#define SPIN_POLLS 2000

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spins until *counter differs from value (1) or equals it (0); returns whether that happened in time. */
static int spin_until(const unsigned long *counter, unsigned long value, int differ) {
    for (int i = 0; i < SPIN_POLLS; i++) {
        if ((__atomic_load_n(counter, __ATOMIC_ACQUIRE) != value) == differ) return 1;
        relax();
    }
    return 0;
}

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake, done;
    int workers;           /* threads started; worker i runs task id i + 1 */
    unsigned long job;     /* bumped for each job */
    unsigned long started; /* the job before the one that started the newest workers */
    int width;             /* task ids of the current job */
    unsigned long remaining; /* workers still running the current job */
    hfb_task fn;
    void *ctx;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0};

/* One job at a time; a caller that finds the pool busy (another Python thread inside a kernel) runs alone. */
static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void *worker_main(void *arg) {
    int tid = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.mutex);
    /* Not pool.job: the job that started this thread was posted before the thread got the mutex. */
    unsigned long seen = pool.started;
    for (;;) {
        if (pool.job == seen) {
            pthread_mutex_unlock(&pool.mutex);
            spin_until(&pool.job, seen, 1);
            pthread_mutex_lock(&pool.mutex);
        }
        while (pool.job == seen) pthread_cond_wait(&pool.wake, &pool.mutex);
        seen = pool.job;
        if (tid < pool.width) {
            hfb_task fn = pool.fn;
            void *ctx = pool.ctx;
            pthread_mutex_unlock(&pool.mutex);
            fn(ctx, tid);
            pthread_mutex_lock(&pool.mutex);
            if (__atomic_sub_fetch(&pool.remaining, 1, __ATOMIC_RELEASE) == 0) pthread_cond_signal(&pool.done);
        }
    }
    return NULL;
}

/* The workers do not exist in a forked child (a DataLoader worker, say): start from an empty pool there. */
static void reset_in_child(void) {
    pthread_mutex_init(&pool.mutex, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pthread_mutex_init(&busy, NULL);
    pool.workers = 0;
    pool.remaining = 0;
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, reset_in_child); }

/* Called with pool.mutex held; returns how many task ids the pool can run at once. */
static int grow(int n) {
    pool.started = pool.job;
    while (pool.workers + 1 < n && pool.workers < MAX_WORKERS) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.workers++;
    }
    return pool.workers + 1;
}

void hfb_parallel(hfb_task fn, void *ctx, int n) {
    if (n <= 1 || pthread_mutex_trylock(&busy) != 0) {
        for (int tid = 0; tid < n; tid++) fn(ctx, tid);
        return;
    }
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.mutex);
    int width = grow(n);
    if (width > n) width = n;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.width = width;
    pool.remaining = (unsigned long)(width - 1);
    __atomic_add_fetch(&pool.job, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);

    fn(ctx, 0);
    /* Task ids the pool could not start threads for. */
    for (int tid = width; tid < n; tid++) fn(ctx, tid);

    if (!spin_until(&pool.remaining, 0, 0)) {
        pthread_mutex_lock(&pool.mutex);
        while (pool.remaining > 0) pthread_cond_wait(&pool.done, &pool.mutex);
        pthread_mutex_unlock(&pool.mutex);
    }
    pthread_mutex_unlock(&busy);
}

#endif

/* ckls.h — the one public C API of the ckls native core.
 *
 * The text between CKLS_CDEF_BEGIN and CKLS_CDEF_END is also the cffi cdef (native/build.py reads it), so it
 * holds only declarations cffi can parse: no macros, no inline code, no preprocessor lines.
 *
 * Conventions: functions that can fail return an int status (CKLS_OK = 0, negative on error) and leave a
 * message for ckls_last_error(); the C core never aborts on bad input.
 */
#ifndef CKLS_H
#define CKLS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CKLS_CDEF_BEGIN */

/* ---- status codes -------------------------------------------------------------------------------------- */
enum {
    CKLS_OK = 0,
    CKLS_EINVAL = -1,     /* bad argument (size, type, pointer) */
    CKLS_ENOMEM = -2,     /* allocation failed */
    CKLS_ECANCELLED = -3, /* a cancel flag was raised */
    CKLS_ERANGE = -4,     /* output buffer too small / position beyond context */
};
const char *ckls_last_error(void); /* message of the last failure on this thread */

/* ---- tensor types (values are ggml's, so GGUF type ids map 1:1) ------------------------------------------ */
enum {
    CKLS_TYPE_F32 = 0,
    CKLS_TYPE_F16 = 1,
    CKLS_TYPE_Q4_0 = 2,
    CKLS_TYPE_Q8_0 = 8,
    CKLS_TYPE_Q4_K = 12,
    CKLS_TYPE_Q6_K = 14,
    CKLS_TYPE_Q8_K = 15, /* activations only */
    CKLS_TYPE_BF16 = 30,
};
int ckls_type_supported(int type);        /* 1 if ckls can hold weights of this type */
int64_t ckls_type_block_size(int type);   /* elements per block, 0 if unsupported */
int64_t ckls_type_block_bytes(int type);  /* bytes per block, 0 if unsupported */
int64_t ckls_row_bytes(int type, int64_t n); /* bytes of one row of n elements, -1 if n is not a block multiple */
int ckls_type_vec_dot_type(int type);     /* activation format this weight type is dotted with */

/* ---- instruction sets ----------------------------------------------------------------------------------- */
/* AVX512VNNI: the AVX-512 table plus vpdpbusd kernels (AVX-512 F/BW/DQ/VL + VNNI); it inherits AVX512's and AVX2's.
 * AMX: the AVX512VNNI table plus the Q8_0 prompt GEMM on AMX-INT8 tiles (Xeons from Sapphire Rapids; Linux grants
 * the tile state on request); it inherits AVX512VNNI's.
 * AVXVNNI: the AVX2 table plus the 8-row vpdpbusd kernels in their VEX encoding (AVX-VNNI: Intel cores from Alder
 * Lake, most of them without AVX-512); it inherits AVX2's.
 * NEONDOT: the NEON table plus SDOT kernels (AArch64 with the dot-product extension, FEAT_DotProd); it inherits NEON's */
enum { CKLS_ISA_SCALAR = 0, CKLS_ISA_AVX2 = 1, CKLS_ISA_AVX512 = 2, CKLS_ISA_NEON = 3, CKLS_ISA_AVX512VNNI = 4,
       CKLS_ISA_NEONDOT = 5, CKLS_ISA_AMX = 6, CKLS_ISA_AVXVNNI = 7, CKLS_ISA_COUNT = 8 };
int ckls_isa_detected(void);              /* best ISA this CPU runs that this build has (AVXVNNI ranks below AVX512) */
int ckls_isa_available(int isa);          /* 1 if compiled in AND supported by this CPU */
int ckls_isa_active(void);                /* ISA the runtime dispatches to now */
int ckls_set_isa(int isa);                /* force an ISA (tests, benchmarks); EINVAL if not available */
const char *ckls_isa_name(int isa);

/* ---- quantization (scalar reference; deterministic) ----------------------------------------------------- */
int ckls_quantize_row(int type, const float *x, void *y, int64_t n);
int ckls_dequantize_row(int type, const void *x, float *y, int64_t n);
/* Quantize rows with an importance weight per column (NULL = plain); what `ckls model quantize` uses. */
int ckls_quantize_rows(int type, const float *x, void *y, int64_t n_rows, int64_t n_cols, const float *imatrix);

/* ---- kernels by ISA, for tests and benchmarks ------------------------------------------------------------ */
/* Activation quantizer of the given ISA: x (f32) -> y in format `type` (Q8_0 or Q8_K; F32/F16/BF16 copy). */
int ckls_kernel_quantize_act(int isa, int type, const float *x, void *y, int64_t n);
/* Dot of one weight row (format `type`) with an activation row already in ckls_type_vec_dot_type(type). */
int ckls_kernel_vec_dot(int isa, int type, int64_t n, const void *w, const void *xq, float *out);
/* The same dot for n_rows consecutive weight rows against one activation row: out[r] (benchmarks, tests). */
int ckls_kernel_vec_dot_rows(int isa, int type, int64_t n_rows, int64_t n, const void *w, const void *xq, float *out);

/* ---- thread pool --------------------------------------------------------------------------------------- */
typedef struct ckls_pool ckls_pool;
ckls_pool *ckls_pool_create(int n_threads); /* NULL on failure (see ckls_last_error) */
void ckls_pool_free(ckls_pool *pool);
int ckls_pool_threads(const ckls_pool *pool);

/* ---- dense ops (row-major, f32 activations) ------------------------------------------------------------- */
/* Y[t, o] = sum_i W[o, i] * X[t, i]; W is n_out rows of n_in in `type`; X is n_tok x n_in f32. */
int ckls_matmul(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in,
                const float *x, int64_t n_tok, float *y);
/* Same with a cancel flag polled between tiles (NULL = none). */
int ckls_matmul_c(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in,
                  const float *x, int64_t n_tok, float *y, const volatile int32_t *cancel);

int ckls_rmsnorm(const float *x, const float *w, float *y, int64_t n_rows, int64_t n, float eps);
enum { CKLS_ROPE_NORM = 0, CKLS_ROPE_NEOX = 2 }; /* llama pairs (2i, 2i+1) / neox halves (i, i + d/2) */
int ckls_rope(float *x, int64_t n_tok, int64_t n_head, int64_t head_dim, const int32_t *pos,
              int64_t n_rot, float freq_base, int mode);
int ckls_softmax(float *x, int64_t n_rows, int64_t n);
int ckls_swiglu(const float *gate, const float *up, float *y, int64_t n); /* y = silu(gate) * up */
/* Causal GQA attention of n_tok queries at positions pos0.. over a cache of pos0 + n_tok keys.
 * q: n_tok x n_head x head_dim; k, v: n_kv_pos x n_head_kv x head_dim (row stride kv_stride floats);
 * out: n_tok x n_head x head_dim. */
int ckls_attention(ckls_pool *pool, const float *q, const float *k, const float *v, float *out,
                   int64_t n_tok, int64_t pos0, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                   int64_t kv_stride);

/* ---- transformer model ---------------------------------------------------------------------------------- */
enum { CKLS_ARCH_LLAMA = 0, CKLS_ARCH_QWEN2 = 1 };

typedef struct {
    const void *data; /* NULL = absent */
    int32_t type;
    int64_t ne0;      /* row length (elements) */
    int64_t ne1;      /* rows (1 for vectors) */
    int64_t nbytes;   /* bytes the caller vouches are readable at data; checked against the shape */
} ckls_tensor;

typedef struct {
    ckls_tensor attn_norm, wq, wk, wv, bq, bk, bv, wo;
    ckls_tensor ffn_norm, w_gate, w_up, w_down;
} ckls_layer;

typedef struct {
    int32_t arch;
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot;
    float rms_eps, rope_base;
    int32_t rope_mode; /* CKLS_ROPE_NORM or CKLS_ROPE_NEOX */
} ckls_hparams;

typedef struct ckls_model ckls_model;
/* Validates every shape, type and byte count; keeps pointers to the weights (no copies).
 * n_ctx: KV cache length in positions. Returns NULL with ckls_last_error() on failure. */
ckls_model *ckls_model_create(const ckls_hparams *hp, const ckls_tensor *tok_embd, const ckls_tensor *output_norm,
                              const ckls_tensor *output, const ckls_layer *layers, int32_t n_ctx, int32_t n_threads);
void ckls_model_free(ckls_model *m);
int32_t ckls_model_n_ctx(const ckls_model *m);
/* Bytes of the interleaved weight copies made at load (0: none, e.g. CKLS_REPACK=0 or no 8-row kernels). */
int64_t ckls_model_packed_bytes(const ckls_model *m);
/* Evaluates n_tok tokens at positions pos0 .. pos0+n_tok-1, overwriting the KV cache there (positions < pos0
 * must already hold the same prefix). Writes n_vocab logits for the last token, or for every token when
 * logits_all (logits must hold n_tok * n_vocab floats then). cancel: polled between layers (NULL = none). */
int ckls_model_eval(ckls_model *m, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *logits,
                    int32_t logits_all, const volatile int32_t *cancel);
/* Hidden state after the final norm for the last evaluated token (n_embd floats); for embeddings/tests. */
int ckls_model_last_hidden(const ckls_model *m, float *out);
/* As ckls_model_eval, but writes every token's hidden state after the final norm (n_tok * n_embd floats) and no
 * logits: the keys of a repository's hidden-state memory. */
int ckls_model_eval_hidden(ckls_model *m, const int32_t *tokens, int32_t n_tok, int32_t pos0, float *hidden,
                           const volatile int32_t *cancel);

/* ---- training: backward ops (row-major f32; each the gradient of the forward op above) ------------------ */
/* dx = dL/dx of y = rmsnorm(x) * w given dy (dx may alias dy); dw (NULL = not wanted) accumulates dL/dw. */
int ckls_rmsnorm_backward(const float *x, const float *w, const float *dy, float *dx, float *dw, int64_t n_rows,
                          int64_t n, float eps);
/* Gradient through ckls_rope with the same arguments: rotates dx back by -theta, in place. */
int ckls_rope_backward(float *dx, int64_t n_tok, int64_t n_head, int64_t head_dim, const int32_t *pos,
                       int64_t n_rot, float freq_base, int mode);
/* y = silu(gate) * up: dgate, dup from dy (either may alias dy). */
int ckls_swiglu_backward(const float *gate, const float *up, const float *dy, float *dgate, float *dup, int64_t n);
/* y = softmax(x) rows: dx = y * (dy - sum(dy * y)) (dx may alias dy). */
int ckls_softmax_backward(const float *y, const float *dy, float *dx, int64_t n_rows, int64_t n);
/* Mean cross-entropy over the rows whose target is >= 0 (negative = ignored). dlogits (NULL = loss only; may
 * alias logits) gets grad_scale * dloss/dlogits, zero on ignored rows. n_counted (may be NULL): rows counted. */
int ckls_cross_entropy(const float *logits, const int32_t *targets, int64_t n_rows, int64_t n_vocab,
                       float grad_scale, float *loss, float *dlogits, int64_t *n_counted);
/* Backward of causal GQA self-attention over one sequence at positions 0..n_tok-1 (ckls_attention, pos0 0,
 * kv_stride n_head_kv * head_dim): from q, k, v (after RoPE) and dout, writes dq, dk, dv (same layouts).
 * Probabilities are recomputed, not stored. */
int ckls_attention_backward(ckls_pool *pool, const float *q, const float *k, const float *v, const float *dout,
                            float *dq, float *dk, float *dv, int64_t n_tok, int64_t n_head, int64_t n_head_kv,
                            int64_t head_dim);
/* C[M x N] = beta * C + alpha * A.B with A's element (i, k) at A[i * a_si + k * a_sk] (so A or its transpose),
 * B row-major K x N (row stride ldb), C row stride ldc; beta is 0 or 1. */
int ckls_gemm_f32(ckls_pool *pool, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t a_si,
                  int64_t a_sk, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* dX = dY.W (accumulate: dX += dY.W) through a frozen weight W of n_out rows of n_in in `type` (any supported
 * weight type): the gradient of ckls_matmul with respect to its input. */
int ckls_matmul_backward(ckls_pool *pool, int type, const void *w, int64_t n_out, int64_t n_in, const float *dy,
                         int64_t n_tok, float *dx, int32_t accumulate);

/* ---- LoRA adapters ------------------------------------------------------------------------------------------ */
/* Per layer, for each chosen matrix W [n_out x n_in]: y = W.x + scale * B.(A.x), A f32 [rank x n_in], B f32
 * [n_out x rank], scale = alpha / rank: llama.cpp's LoRA GGUF layout (lora_a {n_in, r}, lora_b {r, n_out}). */
enum { CKLS_LORA_Q = 1, CKLS_LORA_K = 2, CKLS_LORA_V = 4, CKLS_LORA_O = 8, CKLS_LORA_GATE = 16, CKLS_LORA_UP = 32,
       CKLS_LORA_DOWN = 64, CKLS_LORA_ALL = 127, CKLS_LORA_N_TARGETS = 7 };
/* The one order of the adaptable matrices: target i (0 <= i < CKLS_LORA_N_TARGETS) has flag 1 << i and GGUF base
 * name ckls_lora_target_name(i) ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down");
 * NULL for any other i. */
const char *ckls_lora_target_name(int32_t i);
/* Buffers, each ckls_lora_n_params floats, every tensor at the same offset in each. */
enum { CKLS_LORA_PARAMS = 0, CKLS_LORA_GRADS = 1, CKLS_LORA_ADAM_M = 2, CKLS_LORA_ADAM_V = 3 };
typedef struct ckls_lora ckls_lora;
/* Shapes from hp; A kaiming-uniform (PEFT's init: U(-1/sqrt(n_in), 1/sqrt(n_in)), from seed), B zero,
 * gradients and AdamW moments zero. targets: an OR of CKLS_LORA_* (non-zero). */
ckls_lora *ckls_lora_create(const ckls_hparams *hp, int32_t rank, float alpha, int32_t targets, uint64_t seed);
void ckls_lora_free(ckls_lora *a);
int64_t ckls_lora_n_params(const ckls_lora *a);
float *ckls_lora_buffer(ckls_lora *a, int32_t which);
/* Offset of layer's A (is_b 0) or B (is_b 1) for one CKLS_LORA_* target in every buffer; -1 if absent. */
int64_t ckls_lora_offset(const ckls_lora *a, int32_t layer, int32_t target, int32_t is_b);
int32_t ckls_lora_rank(const ckls_lora *a);
int32_t ckls_lora_targets(const ckls_lora *a);
float ckls_lora_scale(const ckls_lora *a);
int ckls_lora_set_alpha(ckls_lora *a, float alpha);
int64_t ckls_lora_adam_step(const ckls_lora *a); /* optimizer steps taken (bias correction); settable for resume */
int ckls_lora_set_adam_step(ckls_lora *a, int64_t step);
int ckls_lora_zero_grad(ckls_lora *a);
/* Clips the gradient to global L2 norm `clip` (<= 0: no clipping), then one AdamW step (torch.optim.AdamW:
 * bias-corrected moments, decoupled weight decay on every parameter). grad_norm (may be NULL): norm before
 * clipping. Gradients are left as they were (clipped); zero them before the next accumulation. */
int ckls_lora_adamw(ckls_lora *a, float lr, float beta1, float beta2, float eps, float weight_decay, float clip,
                    float *grad_norm);

/* Makes ckls_model_eval apply the adapter (NULL: none) from the next call on; the base weights stay as they are.
 * The KV cache then holds keys/values of the old weights: the caller must drop its cached prefix (re-evaluate
 * from position 0). The adapter must outlive its use by the model. */
int ckls_model_set_lora(ckls_model *m, const ckls_lora *a);

/* ---- LoRA training ---------------------------------------------------------------------------------------- */
typedef struct ckls_train ckls_train;
/* Everything one step over up to max_tok tokens needs, allocated once (activations, gradients, scratch).
 * Holds m and a by pointer: both must outlive it. Steps run on the model's thread pool, so never at the same time
 * as an evaluation of m. By default the forward runs in f32 over dequantized weight panels (eval quantizes
 * activations instead), so the gradients are those of the dequantized model; see ckls_train_set_exact. */
ckls_train *ckls_train_create(ckls_model *m, ckls_lora *a, int32_t max_tok);
void ckls_train_free(ckls_train *t);
/* exact = 1: the forward in f32 over dequantized weights, as above. exact = 0: the products through the frozen
 * weights on the integer kernels eval uses — the forward's activations quantized as eval quantizes them, and dX =
 * dY.W with dY quantized to Q8_0 over a transposed Q8_0 copy of each layer matrix (made here: the layers' weights
 * again in memory, twice with the interleaved copy); the vocabulary projection's dX stays f32 (a softmax gradient
 * spreads over the vocabulary in values too small for 8 bits). The gradient is then within a few percent of the
 * exact one (tests/test_backward_torch.py). */
int ckls_train_set_exact(ckls_train *t, int32_t exact);
/* One forward + backward over tokens[0..n_tok) at positions 0..n_tok-1, predicting targets[i] at position i
 * (negative = ignored). *loss = mean cross-entropy over counted targets (0, and no gradient, when none; only
 * counted rows go through the vocabulary projection, forward and backward); the adapter's gradients accumulate
 * grad_scale * dloss/dparams. cancel is polled between layers and between the work items of the large products
 * (tens of ms apart on one core): CKLS_ECANCELLED leaves the gradients untouched.
 * The model's KV cache is not touched. */
int ckls_train_step(ckls_train *t, const int32_t *tokens, const int32_t *targets, int32_t n_tok, float grad_scale,
                    const volatile int32_t *cancel, float *loss);

/* ---- sampling ------------------------------------------------------------------------------------------- */
typedef struct {
    float temperature; /* <= 0: greedy */
    int32_t top_k;     /* <= 0: off */
    float top_p;       /* >= 1: off */
    float min_p;       /* <= 0: off */
    float repeat_penalty; /* 1: off; applied to tokens in `recent` */
} ckls_sampler_params;
/* Picks a token from logits (modified in place). rng: xorshift state, advanced. recent may be NULL. */
int32_t ckls_sample(float *logits, int32_t n_vocab, const ckls_sampler_params *p, uint64_t *rng,
                    const int32_t *recent, int32_t n_recent);

/* ---- repository memory: a bounded n-gram / suffix-match cache over token streams (ngram_memory.c) ---------- */
/* Files' token streams in an arena of `capacity` tokens. A query takes the context's last two tokens as an anchor,
 * finds the newest (up to max_visits) live places they occur in one file, extends each match backwards (at most
 * CKLS_NGRAM_MAX_MATCH tokens, never across files) and keeps those with the longest match: the next tokens there,
 * counted, are the memory's prediction q. */
enum { CKLS_NGRAM_MAX_CAPACITY = 268435456, CKLS_NGRAM_MAX_MATCH = 64, CKLS_NGRAM_MAX_VISITS = 1024 };
typedef struct ckls_ngram_memory ckls_ngram_memory;
/* capacity: tokens held at most (16 .. CKLS_NGRAM_MAX_CAPACITY; about 20 bytes each once used). NULL on failure. */
ckls_ngram_memory *ckls_ngram_memory_create(int32_t capacity);
void ckls_ngram_memory_free(ckls_ngram_memory *m);
/* Replaces file's tokens (file: the caller's id) with these n; the oldest files are evicted while the live tokens
 * would exceed the capacity; a file longer than the capacity keeps its first `capacity` tokens. Returns the
 * number of tokens stored (0 for n 0, which only removes), or a negative status (then nothing changed). */
int64_t ckls_ngram_memory_add(ckls_ngram_memory *m, int64_t file, const int32_t *tokens, int64_t n);
int ckls_ngram_memory_remove(ckls_ngram_memory *m, int64_t file); /* 1 removed, 0 absent, or negative status */
/* Hides (hidden != 0) or shows a file's tokens: kept and counted, but no prediction reads a hidden file; a later
 * add of the same file keeps it hidden. 1 done, 0 absent, or negative status. */
int ckls_ngram_memory_hide(ckls_ngram_memory *m, int64_t file, int hidden);
int ckls_ngram_memory_clear(ckls_ngram_memory *m);
int32_t ckls_ngram_memory_capacity(const ckls_ngram_memory *m);
int64_t ckls_ngram_memory_tokens(const ckls_ngram_memory *m);   /* live tokens */
int32_t ckls_ngram_memory_files(const ckls_ngram_memory *m);    /* live files */
/* The prediction after ctx[0..n_ctx): distinct next tokens by count (descending, ties by id), written up to cap;
 * returns how many there are (<= max_visits), or a negative status. match_len (may be NULL): the longest match,
 * 0 when the anchor does not occur. max_visits <= 0 or above CKLS_NGRAM_MAX_VISITS means CKLS_NGRAM_MAX_VISITS. */
int32_t ckls_ngram_memory_predict(const ckls_ngram_memory *m, const int32_t *ctx, int32_t n_ctx, int32_t max_visits,
                                  int32_t *ids, int32_t *counts, int32_t cap, int32_t *match_len);
/* How much the memory's prediction weighs: 0 when match_len < max(2, min_match); else
 * lambda_max * min(1, (match_len - min_match + 1) / (full_match - min_match + 1)) [when full_match > min_match]
 *            * total / (total + count_prior)                                       [when count_prior > 0]
 *            * top_count / total                                                   [when agreement]
 * capped at 0.95. total: occurrences with the longest match; top_count: those of the most frequent next token. */
typedef struct {
    int32_t min_match;
    int32_t full_match;
    float lambda_max;
    float count_prior;
    int32_t agreement;
    int32_t max_visits;
} ckls_ngram_mix_params;
float ckls_ngram_mix_weight(const ckls_ngram_mix_params *p, int32_t match_len, int32_t total, int32_t top_count);
/* Mixes the memory into one step's logits, in place: softmax(logits') = (1 - w) softmax(logits) + w q (up to
 * the share of q on masked tokens), w from ckls_ngram_mix_weight. Logits that are -inf or not finite stay as they
 * are. Returns the number of logits changed (0: the memory had nothing to say) or a negative status; *lambda_out
 * (may be NULL) gets w, or 0 when nothing changed. Cost: one pass over the vocabulary when the memory speaks. */
int ckls_ngram_memory_mix(const ckls_ngram_memory *m, float *logits, int32_t n_vocab, const int32_t *ctx,
                          int32_t n_ctx, const ckls_ngram_mix_params *p, float *lambda_out);

/* ---- byte-level BPE tokenizer --------------------------------------------------------------------------- */
enum { CKLS_PRE_GPT2 = 0, CKLS_PRE_QWEN2 = 1, CKLS_PRE_LLAMA3 = 2 };
enum { CKLS_TOKEN_NORMAL = 1, CKLS_TOKEN_UNKNOWN = 2, CKLS_TOKEN_CONTROL = 3, CKLS_TOKEN_USER_DEFINED = 4,
       CKLS_TOKEN_UNUSED = 5, CKLS_TOKEN_BYTE = 6 };
typedef struct ckls_tokenizer ckls_tokenizer;
/* tokens: n_vocab strings (GGUF's byte-level text form) concatenated in tok_data, token i at
 * [tok_off[i], tok_off[i+1]); merges likewise ("left right" per entry); tok_type may be NULL (all normal). */
ckls_tokenizer *ckls_tokenizer_create(int32_t n_vocab, const char *tok_data, const int64_t *tok_off,
                                      const int32_t *tok_type, int32_t n_merges, const char *merge_data,
                                      const int64_t *merge_off, int32_t pre_type);
void ckls_tokenizer_free(ckls_tokenizer *t);
/* Encodes len bytes of UTF-8. parse_special: text equal to a control/user-defined token becomes that token.
 * Returns the number of ids (written up to cap), or a negative status. When the count exceeds cap the
 * return value is still the full count, so the caller can retry with a bigger buffer. */
int64_t ckls_tokenize(ckls_tokenizer *t, const char *text, int64_t len, int32_t parse_special, int32_t *out,
                      int64_t cap);
/* The pieces ckls_tokenize would merge (special tokens count as pieces): their end offsets in bytes, written up
 * to cap; returns the number of pieces or a negative status. For tests and tools. */
int64_t ckls_pretokenize(ckls_tokenizer *t, const char *text, int64_t len, int32_t parse_special, int64_t *ends,
                         int64_t cap);
/* Bytes of one token's text (raw bytes, byte-level decoding undone); returns length or negative status. */
int64_t ckls_token_to_bytes(const ckls_tokenizer *t, int32_t id, char *out, int64_t cap);
/* Concatenated bytes of n_ids tokens (control tokens left out when skip_control); returns the full length,
 * writing up to cap bytes, or a negative status for an id outside the vocabulary. */
int64_t ckls_detokenize(const ckls_tokenizer *t, const int32_t *ids, int64_t n_ids, int32_t skip_control,
                        char *out, int64_t cap);
int32_t ckls_tokenizer_n_vocab(const ckls_tokenizer *t);
const char *ckls_tokenizer_unicode_version(void); /* Unicode version of the pre-tokenizer's class tables */

/* CKLS_CDEF_END */

#ifdef __cplusplus
}
#endif
#endif /* CKLS_H */

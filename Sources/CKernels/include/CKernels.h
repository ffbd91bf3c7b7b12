#ifndef CKERNELS_H
#define CKERNELS_H
#include "ck_parallel.h"
#include "ck_elementwise.h"
#include "ck_norm.h"
#include "ck_convert.h"
#include "ck_attention.h"
#include "ck_dnnl.h"
#include "ck_gemm.h"
#include "ck_omp.h"
#include "ck_alloc.h"
#include "ck_winograd.h"
#include "ck_im2col.h"
#include "ck_packed_gemm.h"
#endif

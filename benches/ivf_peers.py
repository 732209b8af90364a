"""The peers of ``bench_ivf.py``: faiss (IVF-FastScan PQ and RaBitQ, with and without ``Refine(SQ8)``,
HNSW-SQ8; a filtered run and a thread check of one index), ScaNN, SVS (Vamana and IVF), usearch and
Qdrant, each built on the same corpus and timed through ``Bench``, memory counted as each library
stores it."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ivf_common import Bench, Corpus, K, load1, nprobe_grid, timed_build


# ------------------------------------------------------------------------------------------------ faiss
def faiss_configs(nlists: list[int], quick: bool) -> list[tuple[str, str]]:
    """(kind, factory string)."""
    mid = nlists[len(nlists) // 2]
    if quick:
        return [
            ("fastscan", f"IVF{mid},PQ48x4fs"),
            ("fastscan", f"IVF{mid},PQ96x4fs"),
            ("refine", f"IVF{mid},PQ48x4fs,Refine(SQ8)"),
            ("fastscan", f"IVF{mid},RaBitQfs"),
            ("hnsw", "HNSW32,SQ8"),
        ]
    out = [("fastscan", f"IVF{nl},PQ{m}x4fs") for nl in nlists for m in (48, 96, 192)]
    out += [("refine", f"IVF{mid},PQ48x4fs,Refine(SQ8)")]
    out += [("fastscan", f"IVF{mid},RaBitQfs{b}") for b in ("", "2", "4")]
    out += [("hnsw", "HNSW32,SQ8")]
    return out


def run_faiss(
    bench: Bench, corpus: Corpus, kind: str, spec: str, nprobes: list[int], quick: bool, filtered: dict, checks: dict
) -> None:
    import faiss

    index = faiss.index_factory(corpus.dims, spec, faiss.METRIC_INNER_PRODUCT)

    def build():
        faiss.omp_set_num_threads(2)
        index.train(corpus.train())
        for _, block in corpus.chunks():
            index.add(block)

    _, build_s = timed_build(build)
    nbytes = faiss.serialize_index(index).nbytes / index.ntotal
    extra = {"memory_source": "faiss.serialize_index", "load1": load1(), "threads": {"single": 1, "batch": 2}}
    if kind == "hnsw":
        grid = [{"efSearch": ef} for ef in ((16, 64) if quick else (16, 32, 64, 128, 256))]
    elif kind == "refine":
        grid = [{"nprobe": p, "k_factor": kf} for kf in (4, 16) for p in nprobes]
    else:
        grid = [{"nprobe": p} for p in nprobes]
    for params in grid:
        if kind == "hnsw":
            sp = faiss.SearchParametersHNSW(efSearch=params["efSearch"])
        elif kind == "refine":
            sp = faiss.IndexRefineSearchParameters(
                k_factor=params["k_factor"], base_index_params=faiss.SearchParametersIVF(nprobe=params["nprobe"])
            )
        else:
            sp = faiss.SearchParametersIVF(nprobe=params["nprobe"])

        def search(xq, sp=sp):
            return index.search(xq, K, params=sp)[1]

        m = bench.time(search, search, faiss.omp_set_num_threads)
        bench.add("faiss", spec, params, nbytes, build_s, m, kind=kind, **extra)
        if kind in ("fastscan", "refine"):  # the bar's points (see ivf_report.fastscan)
            bench.keep("faiss", spec, params, search, search, faiss.omp_set_num_threads)
    if spec == checks.get("faiss_spec"):
        faiss_filtered(index, corpus, spec, nbytes, filtered, bench)
        checks["faiss"] = faiss_thread_check(index, spec, checks["nprobes"], bench.queries)
        print(f"  thread check: {checks['faiss']}", flush=True)


def faiss_filtered(index, corpus: Corpus, spec: str, nbytes: float, filtered: dict, bench: Bench) -> None:
    """The same filtered measurement for one faiss IVF-FastScan index (``IDSelectorBitmap``), for reference."""
    import faiss

    for sel, allowed in filtered["subsets"].items():
        bits = np.zeros(corpus.n, dtype=bool)
        bits[allowed] = True
        packed = np.packbits(bits, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(packed) * 8, faiss.swig_ptr(packed))
        for nprobe in filtered["nprobes"]:
            sp = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
            bench.time_filtered(
                filtered["rows"], lambda xq, sp=sp: index.search(xq, K, params=sp)[1], filtered["truth"][sel],
                faiss.omp_set_num_threads, library="faiss", config=spec, selectivity=sel,
                allowed_form="IDSelectorBitmap", nprobe=nprobe, bytes_per_vector=nbytes,
            )  # fmt: skip


def faiss_thread_check(index, spec: str, nprobes: list[int], queries: np.ndarray) -> dict:
    """One-query QPS of one faiss index with 1 and with 2 OpenMP threads (ANCHORS: oversubscription)."""
    import faiss

    out: dict = {"spec": spec}
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        qps = {}
        for p in nprobes:
            sp = faiss.SearchParametersIVF(nprobe=p)
            index.search(queries[:1], K, params=sp)
            t = time.perf_counter()
            for i in range(len(queries)):
                index.search(queries[i : i + 1], K, params=sp)
            qps[p] = len(queries) / (time.perf_counter() - t)
        out[f"single_qps_{threads}_threads"] = qps
    faiss.omp_set_num_threads(2)
    return out


# ------------------------------------------------------------------------------------------------ ScaNN
def run_scann(bench: Bench, corpus: Corpus, quick: bool) -> None:
    import scann

    data = corpus.array()
    if data is None:
        bench.note(f"ScaNN skipped: it builds from one in-memory array, and {corpus.n:,} rows exceed the limit")
        return
    leaves = max(1, round(math.sqrt(corpus.n)))
    configs = [(4, None), (4, 100)] if quick else [(4, None), (2, None), (4, 100)]
    searches = [1, 4, 16, 64] if quick else [1, 2, 4, 8, 16, 32, 64, 128]
    for dpb, reorder in configs:
        def build(dpb=dpb, reorder=reorder):
            b = scann.scann_ops_pybind.builder(data, K, "dot_product")
            b = b.tree(num_leaves=leaves, num_leaves_to_search=16, training_sample_size=min(corpus.n, 250_000))
            b = b.score_ah(dpb, anisotropic_quantization_threshold=0.2)
            if reorder:
                b = b.reorder(reorder, quantize=True)  # int8 rescoring store (d bytes a vector)
            return b.build()

        searcher, build_s = timed_build(build)
        code = corpus.dims / dpb / 2  # 16-centre (4-bit) AH codes, packed two a byte in the LUT16 layout
        nbytes = code + 8 + leaves * corpus.dims * 4 / corpus.n + (corpus.dims if reorder else 0)
        with tempfile.TemporaryDirectory() as tmp:
            searcher.serialize(tmp)
            serialized = sum(f.stat().st_size for f in Path(tmp).iterdir()) / corpus.n
        config = f"tree({leaves} leaves),AH(dims_per_block={dpb})" + (f",reorder_int8({reorder})" if reorder else "")
        extra = {
            "memory_source": "computed: 4-bit AH codes packed + 4 B leaf entry + 4 B datapoint index + centroids"
            + (" + int8 store (d B)" if reorder else "") + f"; serialized files {serialized:.1f} B/vector (1 B per code)",
            "load1": load1(),
            "threads": {"single": 1, "batch": 2},
        }  # fmt: skip
        searcher.set_num_threads(2)
        for leaves_to_search in searches:
            kw = {"leaves_to_search": leaves_to_search}
            if reorder:
                kw["pre_reorder_num_neighbors"] = reorder

            def batch(xq, kw=kw, s=searcher):
                return s.search_batched_parallel(xq, final_num_neighbors=K, **kw)[0]

            def single(xq, kw=kw, s=searcher):
                return s.search(xq[0], final_num_neighbors=K, **kw)[0]

            m = bench.time(batch, single)
            bench.add("ScaNN", config, kw, nbytes, build_s, m, **extra)


# -------------------------------------------------------------------------------------------------- SVS
def svs_lvq_supported() -> str | None:
    """None when SVS's LVQ builds here, else why not (it may end the process on some CPUs: tried in a child)."""
    code = (
        "import numpy as np, svs, tempfile, os\n"
        "d = tempfile.mkdtemp(); p = os.path.join(d, 'x.fvecs')\n"
        "x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32); svs.write_vecs(x, p)\n"
        "svs.Vamana.build(svs.VamanaBuildParameters(graph_max_degree=8, window_size=16),\n"
        "    svs.LVQLoader(svs.VectorDataLoader(p, svs.float32, dims=16), 8, 0), svs.DistanceType.MIP)\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if res.returncode == 0 and "ok" in res.stdout:
        return None
    return (res.stdout + res.stderr).strip().splitlines()[-1] if (res.stdout + res.stderr).strip() else f"exit {res.returncode}"


def run_svs(bench: Bench, corpus: Corpus, quick: bool) -> None:
    import svs

    data = corpus.array()
    if data is None:
        bench.note(f"SVS skipped: it builds from one in-memory array, and {corpus.n:,} rows exceed the limit")
        return
    why = svs_lvq_supported()
    if why:
        bench.note(f"SVS LVQ/LeanVec unavailable on this CPU ({why!r}); SVS runs on float16 vectors only")
    data16 = data.astype(np.float16)
    params = svs.VamanaBuildParameters(graph_max_degree=32, window_size=64, alpha=0.95)

    def build_vamana():
        return svs.Vamana.build(params, data16, svs.DistanceType.MIP, num_threads=2)

    index, build_s = timed_build(build_vamana)
    nbytes = _saved_bytes(lambda d: index.save(f"{d}/c", f"{d}/g", f"{d}/d")) / corpus.n
    extra = {"memory_source": "saved files (float16 data + graph)", "load1": load1(), "threads": {"single": 1, "batch": 2}}

    def threads(n):
        index.num_threads = n

    for window in (10, 40) if quick else (10, 20, 40, 80, 160):
        index.search_window_size = window

        def search(xq):
            return index.search(xq, K)[0]

        m = bench.time(search, search, threads)
        bench.add("SVS", "Vamana(R=32,L=64),float16", {"window": window}, nbytes, build_s, m, **extra)
    index = None  # free the graph before the IVF is built
    nlist = 2 ** round(math.log2(math.sqrt(corpus.n)))

    def build_ivf():
        clustering = svs.Clustering.build(
            svs.IVFBuildParameters(num_centroids=nlist, num_iterations=10, training_fraction=0.5),
            data16, svs.DistanceType.MIP, num_threads=2,
        )  # fmt: skip
        return svs.IVF.assemble_from_clustering(clustering, data16, svs.DistanceType.MIP, num_threads=2)

    ivf, build_s = timed_build(build_ivf)
    nbytes = _saved_bytes(lambda d: ivf.save(f"{d}/c", f"{d}/d")) / corpus.n
    extra["memory_source"] = "saved files (float16 clustered data + ids + bfloat16 centroids)"
    extra["threads"] = {"single": "2-thread pool, one query", "batch": 2}
    for nprobe in nprobe_grid(quick):
        ivf.search_parameters = svs.IVFSearchParameters(n_probes=nprobe, k_reorder=1.0)

        def search(xq):
            return ivf.search(xq, K)[0]

        m = bench.time(search, search)
        bench.add("SVS", f"IVF{nlist},float16", {"nprobe": nprobe}, nbytes, build_s, m, **extra)


def _saved_bytes(save: Callable[[str], None]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        save(tmp)
        return sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------- usearch
def run_usearch(bench: Bench, corpus: Corpus, quick: bool) -> None:
    from usearch.index import Index as UIndex

    for dtype in ("i8", "b1"):
        metric = "ip" if dtype == "i8" else "hamming"
        # b1: sign bits packed, symmetric Hamming (usearch has no float query against bit vectors).
        prep = (lambda x: x) if dtype == "i8" else (lambda x: np.packbits(x > 0, axis=1))
        index = UIndex(ndim=corpus.dims, metric=metric, dtype=dtype, connectivity=16, expansion_add=128)

        def build(index=index, prep=prep):
            for start, block in corpus.chunks():
                index.add(np.arange(start, start + len(block)), prep(block), threads=2)

        _, build_s = timed_build(build)
        nbytes = index.serialized_length / corpus.n
        extra = {
            "memory_source": f"usearch serialized_length (memory_usage with reserved arenas: {index.memory_usage / corpus.n:.1f} B)",
            "load1": load1(),
            "threads": {"single": 1, "batch": 2},
        }
        for ef in (16, 64) if quick else (16, 32, 64, 128, 256):
            index.expansion_search = ef

            def batch(xq, index=index, prep=prep):
                return index.search(prep(xq), K, threads=2).keys

            def single(xq, index=index, prep=prep):
                return index.search(prep(xq)[0], K, threads=1).keys

            m = bench.time(batch, single)
            bench.add("usearch", f"HNSW(M=16,ef_add=128),{dtype}", {"ef": ef}, nbytes, build_s, m, **extra)


# ----------------------------------------------------------------------------------------------- Qdrant
def run_qdrant(bench: Bench, corpus: Corpus, quick: bool) -> None:
    import qdrant_edge as q

    m_links = 16
    for kind in ("tq",) if quick else ("tq", "bq"):
        if kind == "tq":
            config = q.TurboQuantQuantizationConfig(always_ram=True, bits=q.TurboQuantBitSize.Bits2)
            code, label = 104, "TurboQuant 2-bit"  # codes + two float32 factors (ANCHORS.md)
        else:
            config = q.BinaryQuantizationConfig(
                always_ram=True,
                encoding=q.BinaryQuantizationEncoding.OneBit,
                query_encoding=q.BinaryQuantizationQueryEncoding.Scalar8Bits,
            )
            code, label = corpus.dims // 8, "BQ 1-bit, Scalar8Bits query"
        with tempfile.TemporaryDirectory() as path:

            def build(path=path, config=config):
                shard = q.EdgeShard.create(
                    path,
                    q.EdgeConfig(
                        vectors={
                            "": q.EdgeVectorParams(
                                size=corpus.dims, distance=q.Distance.Dot, on_disk=True, quantization_config=config
                            )
                        },
                        hnsw_config=q.HnswIndexConfig(m=m_links, ef_construct=100, full_scan_threshold=10),
                        optimizers=q.EdgeOptimizersConfig(indexing_threshold=1, default_segment_number=1),
                        max_search_threads=2,
                    ),
                )
                for start, block in corpus.chunks():
                    for s in range(0, len(block), 1000):
                        points = [q.Point(start + s + i, row.tolist()) for i, row in enumerate(block[s : s + 1000])]
                        shard.update(q.UpdateOperation.upsert_points(points))
                shard.optimize()
                return shard

            shard, build_s = timed_build(build)
            try:
                for rescore, oversampling in ((False, 1.0), (True, 4.0)):
                    # Without rescoring the float originals (on disk) are never read; with it they are counted.
                    nbytes = code + 2 * m_links * 4 + 16 + (corpus.dims * 4 if rescore else 0)
                    extra = {
                        "memory_source": "computed: codes + level-0 links (2m x 4 B) + 16 B ids/versions"
                        + (" + float32 originals (read by the rescore)" if rescore else "; originals on disk, unread"),
                        "load1": load1(),
                        "threads": {"single": "one request", "batch": "query_batch, max_search_threads=2"},
                    }
                    for ef in (16, 64) if quick else (16, 32, 64, 128, 256):
                        params = q.SearchParams(
                            hnsw_ef=ef,
                            quantization=q.QuantizationSearchParams(rescore=rescore, oversampling=oversampling),
                        )

                        def search(xq, params=params, shard=shard):
                            reqs = [q.QueryRequest(limit=K, query=q.Query.Nearest(v.tolist()), params=params) for v in xq]
                            ids = np.full((len(xq), K), -1, dtype=np.int64)
                            for row, hits in enumerate(shard.query_batch(q.QueryBatchRequest(reqs))):
                                ids[row, : len(hits)] = [h.id for h in hits]
                            return ids

                        m = bench.time(search, search)
                        config_name = f"HNSW(m={m_links},ef_construct=100),{label}" + (
                            f",rescore(oversampling={oversampling:g})" if rescore else ""
                        )
                        bench.add("Qdrant", config_name, {"ef": ef}, nbytes, build_s, m, **extra)
            finally:
                shard.close()

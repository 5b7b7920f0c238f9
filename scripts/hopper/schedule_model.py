#!/usr/bin/env python3
"""List-scheduling model of the Hopper forward's causal tile order (docs/hopper-notes.md step 23).

CTAs take tiles in index order as they finish (the dynamic scheduler's claims; also the hardware's
order for one CTA per tile); a tile of n key blocks costs n + 1 + `extra` turns (n + 1 with the
first Q·Kᵀ turn and the last P·V turn, `extra` for the epilogue and hand-over). Prints the
makespan over the ideal (total work / CTAs) for the plain order (one head after another, longest
query block first) and for tile groups of G heads (the query block slow inside a group).

  python3 scripts/hopper/schedule_model.py [--ctas 132] [--extra 1.0]
"""
import argparse, heapq

def makespan(order, ctas, cost):
    finish = [0.0] * ctas
    heapq.heapify(finish)
    for tile in order:
        heapq.heappush(finish, heapq.heappop(finish) + cost(tile))
    return max(finish)

def grouped(m_blocks, heads, group):
    """Tiles as (query block, head): groups of `group` heads, longest query block first inside."""
    order = []
    for g0 in range(0, heads, group):
        size = min(group, heads - g0)
        for m in range(m_blocks):
            order += [(m_blocks - 1 - m, g0 + h) for h in range(size)]
    return order

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ctas", type=int, default=132)
    ap.add_argument("--extra", type=float, default=1.0)
    a = ap.parse_args()
    cost = lambda t: t[0] + 2 + a.extra  # query block b sees b + 1 key blocks (blockM = blockN)
    print(f"{'seqlen':>6} {'heads':>5} " + " ".join(f"{'G=' + str(g):>7}" for g in (1, 2, 4, 8, 16, 64)))
    for seqlen, heads in [(512, 1024), (1024, 256), (2048, 128), (4096, 64), (8192, 32), (16384, 16)]:
        m_blocks = seqlen // 128
        ideal = sum(cost((m, 0)) for m in range(m_blocks)) * heads / a.ctas
        cells = [makespan(grouped(m_blocks, heads, g), a.ctas, cost) / ideal for g in (1, 2, 4, 8, 16, 64)]
        print(f"{seqlen:>6} {heads:>5} " + " ".join(f"{c:7.4f}" for c in cells))

if __name__ == "__main__":
    main()

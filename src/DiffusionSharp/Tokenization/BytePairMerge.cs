namespace DiffusionSharp.Tokenization;

/// <summary>
/// Byte-level BPE of one pre-token, as <c>SimpleTokenizer.bpe</c> does it: the word's UTF-8 bytes become byte
/// symbols, the last one carrying <c>&lt;/w&gt;</c>; then, repeatedly, the adjacent pair with the lowest merge rank
/// is found and every non-overlapping occurrence of it is merged, left to right, until no adjacent pair is in the
/// merge table.
/// </summary>
/// <remarks>
/// The reference recomputes every pair after each merge, which is quadratic in the word length. This version keeps
/// the candidate pairs in a priority queue ordered by (rank, position) over a linked list of symbols, so a word of n
/// bytes costs O(n log n). It merges in exactly the reference's order: all occurrences of the current rank go
/// left to right before pairs created meanwhile are considered, because those wait in <c>created</c> until the
/// round of that rank ends.
/// </remarks>
internal static class BytePairMerge
{
    /// <summary>Appends the token ids of one pre-token, given as its UTF-8 bytes (at least one), to <paramref name="ids"/>.</summary>
    public static void Encode(ReadOnlySpan<byte> word, ClipVocabulary vocabulary, List<int> ids)
    {
        int n = word.Length;
        var symbols = new int[n];
        for (int i = 0; i < n - 1; i++) symbols[i] = vocabulary.ByteSymbol[word[i]];
        symbols[n - 1] = vocabulary.ByteSymbolEndOfWord[word[n - 1]];

        var next = new int[n];
        var previous = new int[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; previous[i] = i - 1; }

        // Each element is the index of a pair's left symbol; its priority is (rank << 32) | index.
        var queue = new PriorityQueue<int, long>();
        var created = new List<(int Left, long Priority)>();
        for (int i = 0; i + 1 < n; i++) Offer(i, queue);

        int roundRank = -1;
        while (true)
        {
            if (!queue.TryDequeue(out int left, out long priority))
            {
                if (created.Count == 0) break;
                EndRound();
                continue;
            }
            int rank = (int)(priority >> 32);
            if (rank != roundRank && created.Count > 0)
            {
                queue.Enqueue(left, priority);
                EndRound();
                continue;
            }
            roundRank = rank;

            // Skip stale entries: the left symbol was merged away, or either symbol changed since the pair was queued.
            int right = previous[left] == -2 ? -1 : next[left];
            if (right < 0 || !vocabulary.TryGetMerge(symbols[left], symbols[right], out var merge) || merge.Rank != rank)
                continue;

            symbols[left] = merge.Result;
            next[left] = next[right];
            if (next[right] >= 0) previous[next[right]] = left;
            previous[right] = -2; // removed
            if (previous[left] >= 0) Offer(previous[left], null);
            if (next[left] >= 0) Offer(left, null);
        }

        for (int i = 0; i >= 0; i = next[i]) ids.Add(symbols[i]);

        // Queues the pair starting at symbol index `left` if it is mergeable: into the queue directly while
        // seeding, else into `created` until the current round ends.
        void Offer(int left, PriorityQueue<int, long>? target)
        {
            if (!vocabulary.TryGetMerge(symbols[left], symbols[next[left]], out var merge)) return;
            long key = ((long)merge.Rank << 32) | (uint)left;
            if (target is not null) target.Enqueue(left, key);
            else created.Add((left, key));
        }

        void EndRound()
        {
            foreach (var (left, priority) in created) queue.Enqueue(left, priority);
            created.Clear();
            roundRank = -1;
        }
    }
}

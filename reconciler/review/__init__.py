"""Pull-request review: the plan posted as a sticky comment, and a commit status beside it.

`comments` splits a rendered Markdown plan into parts that each fit one GitHub comment and
recognises the parts posted before; `github` is the REST client and the flow that edits
those parts in place on every push instead of adding a new comment each time.
"""

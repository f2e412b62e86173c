"""Evaluation over test lists: WER/CER, speaker similarity, DNSMOS, RTF, reports."""

"""Ad-tech rules with no HTTP in them.

OpenRTB notices and prices, click signing, landing-URL safety, consent.
"""

// rnnlab's MathJax 2 settings, for every page of the site and the notebook pages alike.
// docs/hooks/offline.py installs this file as [MathJax]/config/local/rnnlab.js, and pages load
// MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,local/rnnlab
MathJax.Hub.Config({
  // $...$ is inline math too, as in the notebooks' markdown cells
  tex2jax: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
  },
  // the package bundles the STIX web fonts only: use them, never the TeX fonts or image fonts
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null},
  messageStyle: "none",
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/rnnlab.js");

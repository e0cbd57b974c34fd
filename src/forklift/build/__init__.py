"""``forklift build``: a Dockerfile's plan executed into an image.

Where each part lives (the meaning of every instruction is the front end's,
:mod:`forklift.dockerfile.dispatch`; these modules execute it):

=====================================  =============================================
``FROM`` (base image, stage, scratch)  :mod:`.stage` (pulls: :mod:`.builder`)
``COPY``, ``ADD``, ``WORKDIR``         :mod:`.fileop` (destinations: :mod:`.copyop`,
                                       sources: :mod:`.context`, :mod:`.rootview`)
``RUN``                                :mod:`.runop` (its mounts: :mod:`.runstep`)
every other instruction                :mod:`.metadata`
the step interface, cache plumbing     :mod:`.step`, :mod:`.cache`, :mod:`.explain`
stages in order, at once               :mod:`.scheduler`
the build end to end                   :mod:`.builder`, :mod:`.workspace`
``--output``                           :mod:`.export`
flags and results                      :mod:`.options`; output: :mod:`.progress`
=====================================  =============================================
"""
